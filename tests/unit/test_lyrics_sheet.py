"""Lyric sheets: plain text, stanzas, LRC hints, labels and headers, bad files."""

import pytest

from engine.errors import InvalidLyricsError
from engine.lyrics import parse_sheet, read_sheet


def test_lines_and_stanzas():
    sheet = parse_sheet("First line\nSecond line\n\n\nThird line\n  \nFourth line  \n")
    assert [l.text for l in sheet.lines] == ["First line", "Second line", "Third line", "Fourth line"]
    assert [l.stanza for l in sheet.lines] == [0, 0, 1, 2]
    assert [l.index for l in sheet.lines] == [0, 1, 2, 3]
    assert not sheet.hinted


def test_lrc_tags_are_hints_and_headers_labels_and_word_stamps_are_dropped():
    text = ("\ufeff[ar:Someone]\n[ti:A Song]\n[offset:+120]\n[Chorus]\n"
            "[00:12.50]<00:12.50>Never <00:13.00>let me go\n[01:02.3]Second line\n[01:05.00]\n(Verse 2)\n"
            "(oh yeah) third line\n")
    sheet = parse_sheet(text)
    assert [(l.text, l.hint) for l in sheet.lines] == [
        ("Never let me go", 12.5), ("Second line", pytest.approx(62.3)), ("(oh yeah) third line", None)]
    assert [l.stanza for l in sheet.lines] == [0, 0, 1]  # the clearing stamp and the label end a stanza


def test_compressed_lrc_expands_and_a_fully_tagged_sheet_is_ordered_by_time():
    sheet = parse_sheet("[00:30.00][01:30.00]Hook line\n[00:10.00]Verse line\n[01:00.00]Other line\n")
    assert [(l.text, l.hint) for l in sheet.lines] == [
        ("Verse line", 10.0), ("Hook line", 30.0), ("Other line", 60.0), ("Hook line", 90.0)]
    assert [l.index for l in sheet.lines] == [0, 1, 2, 3]


@pytest.mark.parametrize("text", ["", "\n\n  \n", "[Chorus]\n[ar:x]\n[00:01.00]\n", "(Bridge)\n"])
def test_nothing_to_sing_is_refused(text):
    with pytest.raises(InvalidLyricsError, match="no lyric lines"):
        parse_sheet(text)


def test_bad_files_get_one_sentence(tmp_path):
    with pytest.raises(InvalidLyricsError, match="does not exist"):
        read_sheet(tmp_path / "missing.txt")
    with pytest.raises(InvalidLyricsError, match="is a directory"):
        read_sheet(tmp_path)
    binary = tmp_path / "song.mp3"
    binary.write_bytes(b"ID3\x03\x00\x00\x00\xff\xfb\x90\x00" * 10)
    with pytest.raises(InvalidLyricsError, match="not UTF-8 text|not text"):
        read_sheet(binary)
    latin1 = tmp_path / "latin1.txt"
    latin1.write_bytes("Je marche sur la rivi\xe8re\n".encode("latin-1"))
    with pytest.raises(InvalidLyricsError, match="not UTF-8"):
        read_sheet(latin1)
    utf16 = tmp_path / "utf16.txt"
    utf16.write_text("Le soleil du matin\n", encoding="utf-16")
    assert read_sheet(utf16).lines[0].text == "Le soleil du matin"
    long_line = tmp_path / "prose.txt"
    long_line.write_text("word " * 200)
    with pytest.raises(InvalidLyricsError, match="one sung line per text line"):
        read_sheet(long_line)
