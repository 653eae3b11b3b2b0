"""Lyrics for the constructed songs, written for this corpus: the same little song in five
languages, so results compare across languages line for line.

Each language has verse lines, chorus lines, a short hook (sung four times in the alignment
songs) and one line that belongs on the lyric sheet but is never sung.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Lyrics:
    verse: tuple[str, ...]
    chorus: tuple[str, ...]
    hook: str
    unsung: str


LYRICS: dict[str, Lyrics] = {
    "en": Lyrics(
        verse=("The morning light is falling on the river",
               "I walk along the road that takes me home",
               "The city sleeps beneath a silver moon",
               "And every window keeps a quiet dream"),
        chorus=("We are running with the wind again",
                "Nothing in the world can stop us now",
                "We will shout it every single time",
                "Until the morning finds us here"),
        hook="Never let me go",
        unsung="The river turns to gold before the rain",
    ),
    "fr": Lyrics(
        verse=("Le soleil du matin brille sur la rivière",
               "Je marche sur la route qui me ramène",
               "Toute la ville dort sous la lune",
               "Et chaque fenêtre attend le jour"),
        chorus=("Nous partons ensemble ce soir",
                "Personne ne peut nous arrêter",
                "Chante avec nous encore une fois",
                "Jusqu'à la fin de la nuit"),
        hook="Reste avec moi ce soir",
        unsung="La rivière devient dorée avant la pluie",
    ),
    "es": Lyrics(
        verse=("La luz de la mañana cae sobre el río",
               "Camino por la calle que me lleva a casa",
               "La ciudad descansa bajo la luna",
               "Y cada ventana guarda un sueño"),
        chorus=("Corremos con el viento esta noche",
                "Nadie en el mundo nos va a parar",
                "Canta más fuerte cada vez",
                "Hasta que llegue la mañana"),
        hook="Quédate conmigo esta noche",
        unsung="El río se vuelve de oro antes de la lluvia",
    ),
    "de": Lyrics(
        verse=("Das Licht des Morgens fällt auf den Fluss",
               "Ich gehe die Straße, die nach Hause führt",
               "Die Stadt schläft unter dem hellen Mond",
               "Und jedes Fenster hält einen stillen Traum"),
        chorus=("Wir fahren heute Nacht mit dem Wind",
                "Nichts auf der Welt kann uns aufhalten",
                "Wir singen lauter jedes Mal",
                "Bis uns der Morgen hier findet"),
        hook="Lass mich nicht gehen",
        unsung="Der Fluss wird golden vor dem Regen",
    ),
    "it": Lyrics(
        verse=("La luce del mattino brilla sul fiume",
               "Cammino sulla strada che mi porta a casa",
               "La città dorme sotto una luna d'argento",
               "E ogni finestra custodisce un sogno"),
        chorus=("Corriamo con il vento questa notte",
                "Niente al mondo ci può fermare",
                "Canta più forte ogni volta",
                "Finché il mattino ci troverà"),
        hook="Resta con me stanotte",
        unsung="Il fiume diventa d'oro prima della pioggia",
    ),
}
