"""Prose for synthesised long-form speech (espeak-ng), written for this project.

``LIGHTHOUSE`` is a second English text, unlike the flood story in ``corpus.speech``: another
subject, another voice (British) and rate, and numbers spoken as words, so a decoder tuned on
one text is checked on another. ``FLOOD`` holds the opening of the flood story in eight more
languages, for the multilingual accuracy table (zh is scored per character).
"""

from __future__ import annotations

LIGHTHOUSE = (
    "Every lighthouse on this coast was once looked after by a keeper who lived beside the tower with "
    "his family, often many miles from the nearest shop or doctor.",
    "The keeper's day began before sunrise. He climbed one hundred and twelve steps to the lantern room, "
    "put out the flame, and polished the great glass lens until it shone.",
    "In the afternoon he trimmed the wicks, filled the oil tanks, and wrote in the log book how far he "
    "could see, what the wind was doing, and which ships had passed.",
    "Most of the entries are short and plain. A typical line reads: light visible at twenty miles, wind "
    "from the west, two fishing boats returned before dark.",
    "But some pages tell longer stories. In the winter of eighteen ninety-one, a cargo ship lost its mast "
    "in a gale and drifted towards the rocks below the tower.",
    "The keeper and his eldest daughter rowed out in a small boat through waves higher than a house. "
    "They brought back seven sailors, one at a time, before the ship broke apart.",
    "The daughter was fifteen years old. Newspapers in the capital printed her picture, and strangers "
    "sent letters and gifts, but she said she had only done what anyone would do.",
    "Life at the station was lonely, and the families found ways to keep busy. They kept goats and "
    "chickens, grew potatoes in sheltered corners, and taught their children at the kitchen table.",
    "Once a month a supply boat arrived with flour, coal, newspapers and mail. When the sea was rough it "
    "could not land, and the family waited, sometimes for weeks, counting what was left.",
    "Technology changed the work slowly. Paraffin replaced whale oil, then electric lamps replaced "
    "paraffin, and a clockwork motor was fitted to turn the lens without a keeper's hand.",
    "In the nineteen sixties, engineers installed automatic lights that could run for months without "
    "attention. One by one, the keepers packed their belongings and moved to the towns.",
    "The last keeper on this headland left on a grey morning in April. He locked the door, handed the "
    "keys to an engineer, and did not look back as the boat carried him away.",
    "For years the buildings stood empty. Gulls nested on the window ledges, the paint peeled in the salt "
    "air, and the garden walls slowly disappeared under grass and heather.",
    "Then a group of volunteers decided to save the station. They repaired the roofs, cleaned the rooms, "
    "and collected old photographs, tools and uniforms from families along the coast.",
    "Today the keeper's cottage is a small museum. Visitors can read the log books, try the heavy brass "
    "telescope, and climb the one hundred and twelve steps to the lantern room.",
    "On clear evenings the volunteers still climb the tower to watch the light come on. It turns without "
    "a sound, sweeping across the water every ten seconds, just as it did a century ago.",
    "Sailors no longer need it the way they once did, because satellites tell them exactly where they "
    "are. Yet many say they feel safer when they see that familiar flash on the horizon.",
    "The daughter who rowed into the storm lived to be ninety. When she was asked what she remembered "
    "most, she did not talk about the rescue. She talked about the silence of the nights, and the light "
    "turning above her.",
)

# The first seven paragraphs of the flood story; key: Whisper's language code.
FLOOD = {
    "fr": (
        "La vieille émission de radio commença par un avertissement au sujet de la tempête. On demanda aux "
        "fermiers de rentrer leur bétail avant la tombée de la nuit, et le capitaine du port ferma le port "
        "jusqu'au matin.",
        "Au village, le boulanger garda ses fours allumés toute la nuit, afin que chacun ait du pain quand le "
        "vent s'arrêterait enfin.",
        "Les enfants écoutaient le bulletin météo sur un poste qui grésillait, pendant que leur grand-mère "
        "racontait l'histoire de la grande inondation dont elle se souvenait depuis sa jeunesse.",
        "Vers minuit, la pluie tombait si fort que la rivière monta au-dessus du vieux pont de pierre, et le "
        "maire demanda à toutes les familles proches de l'eau de se rendre à l'école sur la colline.",
        "Des bénévoles portèrent des couvertures, des lampes et des caisses de nourriture sur la route "
        "étroite, en chantant pour garder le moral, tandis que la cloche de l'église sonnait toutes les heures.",
        "Quand le soleil se leva, la vallée ressemblait à un lac. Des barques avançaient lentement entre les "
        "toits, et les pêcheurs, qui connaissaient les courants mieux que personne, les guidèrent en lieu sûr.",
        "Il fallut trois semaines pour que l'eau redescende. La mairie devint à la fois une cuisine, un "
        "hôpital et une école, et personne ne se plaignit du bruit.",
    ),
    "de": (
        "Die alte Radiosendung begann mit einer Warnung vor dem Sturm. Die Bauern sollten ihr Vieh vor "
        "Einbruch der Nacht in den Stall bringen, und der Hafenmeister schloss den Hafen bis zum Morgen.",
        "Im Dorf ließ der Bäcker seine Öfen die ganze Nacht brennen, damit alle Brot hätten, wenn der Wind "
        "endlich aufhörte.",
        "Die Kinder hörten den Wetterbericht auf einem knisternden Empfänger, während ihre Großmutter von der "
        "großen Flut erzählte, an die sie sich aus ihrer Jugend erinnerte.",
        "Um Mitternacht regnete es so stark, dass der Fluss über die alte Steinbrücke stieg, und der "
        "Bürgermeister bat alle Familien am Wasser, in die Schule auf dem Hügel zu gehen.",
        "Freiwillige trugen Decken, Lampen und Kisten mit Essen die schmale Straße hinauf und sangen, um den "
        "Mut nicht zu verlieren, während die Kirchenglocke jede Stunde läutete.",
        "Als die Sonne aufging, sah das Tal aus wie ein See. Boote fuhren langsam zwischen den Dächern, und "
        "die Fischer, die die Strömungen besser kannten als alle anderen, brachten sie in Sicherheit.",
        "Es dauerte drei Wochen, bis das Wasser zurückging. Das Rathaus wurde zugleich Küche, Krankenhaus und "
        "Schule, und niemand beschwerte sich über den Lärm.",
    ),
    "es": (
        "La vieja emisión de radio comenzó con un aviso sobre la tormenta. Se pidió a los granjeros que "
        "metieran el ganado antes del anochecer, y el capitán del puerto cerró el puerto hasta la mañana.",
        "En el pueblo, el panadero mantuvo los hornos encendidos durante toda la noche, para que todos "
        "tuvieran pan cuando por fin se calmara el viento.",
        "Los niños escuchaban el parte meteorológico en una radio que crujía, mientras su abuela contaba "
        "historias de la gran inundación que recordaba de su juventud.",
        "A medianoche llovía tanto que el río subió por encima del viejo puente de piedra, y el alcalde pidió "
        "a todas las familias cercanas al agua que fueran a la escuela de la colina.",
        "Los voluntarios subieron mantas, lámparas y cajas de comida por el camino estrecho, cantando para no "
        "perder el ánimo, mientras la campana de la iglesia sonaba cada hora.",
        "Cuando salió el sol, el valle parecía un lago. Las barcas avanzaban despacio entre los tejados, y los "
        "pescadores, que conocían las corrientes mejor que nadie, las guiaron hasta un lugar seguro.",
        "El agua tardó tres semanas en bajar. El ayuntamiento se convirtió a la vez en cocina, hospital y "
        "escuela, y nadie se quejó del ruido.",
    ),
    "it": (
        "La vecchia trasmissione radiofonica cominciò con un avviso sulla tempesta. Ai contadini fu detto di "
        "portare il bestiame al riparo prima del tramonto, e il capitano del porto chiuse il porto fino al mattino.",
        "Nel villaggio, il fornaio tenne i forni accesi per tutta la notte, perché tutti avessero il pane "
        "quando il vento si fosse finalmente calmato.",
        "I bambini ascoltavano il bollettino meteo da una radio che gracchiava, mentre la nonna raccontava "
        "della grande alluvione che ricordava dalla sua giovinezza.",
        "A mezzanotte pioveva così forte che il fiume salì sopra il vecchio ponte di pietra, e il sindaco "
        "chiese a tutte le famiglie vicine all'acqua di andare nella scuola sulla collina.",
        "I volontari portarono coperte, lampade e casse di cibo su per la strada stretta, cantando per farsi "
        "coraggio, mentre la campana della chiesa suonava ogni ora.",
        "Quando sorse il sole, la valle sembrava un lago. Le barche si muovevano lentamente tra i tetti, e i "
        "pescatori, che conoscevano le correnti meglio di chiunque altro, le guidarono in salvo.",
        "Ci vollero tre settimane perché l'acqua si ritirasse. Il municipio divenne allo stesso tempo cucina, "
        "ospedale e scuola, e nessuno si lamentò del rumore.",
    ),
    "pt": (
        "A velha emissão de rádio começou com um aviso sobre a tempestade. Os agricultores foram avisados para "
        "recolher o gado antes do anoitecer, e o capitão do porto fechou o porto até de manhã.",
        "Na aldeia, o padeiro manteve os fornos acesos durante toda a noite, para que todos tivessem pão "
        "quando o vento finalmente parasse.",
        "As crianças ouviam o boletim meteorológico num rádio que estalava, enquanto a avó contava histórias "
        "da grande cheia de que se lembrava da sua juventude.",
        "À meia-noite chovia tanto que o rio subiu acima da velha ponte de pedra, e o presidente da câmara "
        "pediu a todas as famílias perto da água que fossem para a escola no alto da colina.",
        "Os voluntários levaram cobertores, candeeiros e caixas de comida pela estrada estreita, a cantar para "
        "manter o ânimo, enquanto o sino da igreja tocava de hora a hora.",
        "Quando o sol nasceu, o vale parecia um lago. Os barcos avançavam devagar entre os telhados, e os "
        "pescadores, que conheciam as correntes melhor do que ninguém, guiaram-nos para um lugar seguro.",
        "A água levou três semanas a descer. A câmara municipal tornou-se ao mesmo tempo cozinha, hospital e "
        "escola, e ninguém se queixou do barulho.",
    ),
    "pl": (
        "Stara audycja radiowa zaczęła się od ostrzeżenia przed burzą. Rolnikom kazano zagnać bydło do obór "
        "przed zmrokiem, a kapitan portu zamknął port do rana.",
        "We wsi piekarz przez całą noc nie gasił pieców, żeby wszyscy mieli chleb, kiedy wiatr wreszcie ucichnie.",
        "Dzieci słuchały prognozy pogody z trzeszczącego odbiornika, a babcia opowiadała o wielkiej powodzi, "
        "którą pamiętała z młodości.",
        "O północy padało tak mocno, że rzeka wezbrała ponad stary kamienny most, a burmistrz poprosił "
        "wszystkie rodziny mieszkające nad wodą, żeby przeszły do szkoły na wzgórzu.",
        "Ochotnicy nieśli koce, lampy i skrzynki z jedzeniem wąską drogą pod górę, śpiewając dla dodania "
        "sobie otuchy, a dzwon kościelny bił co godzinę.",
        "Kiedy wzeszło słońce, dolina wyglądała jak jezioro. Łodzie powoli płynęły między dachami, a rybacy, "
        "którzy znali prądy lepiej niż ktokolwiek inny, prowadzili je w bezpieczne miejsce.",
        "Woda opadała przez trzy tygodnie. Ratusz był jednocześnie kuchnią, szpitalem i szkołą, i nikt nie "
        "narzekał na hałas.",
    ),
    "ru": (
        "Старая радиопередача началась с предупреждения о шторме. Фермерам велели загнать скот до "
        "наступления темноты, а начальник порта закрыл порт до утра.",
        "В деревне пекарь всю ночь не гасил печи, чтобы у всех был хлеб, когда ветер наконец утихнет.",
        "Дети слушали прогноз погоды по трещащему приёмнику, а бабушка рассказывала о большом наводнении, "
        "которое помнила с юности.",
        "К полуночи дождь лил так сильно, что река поднялась выше старого каменного моста, и мэр попросил все "
        "семьи, жившие у воды, перейти в школу на холме.",
        "Добровольцы несли одеяла, лампы и ящики с едой вверх по узкой дороге и пели, чтобы не падать духом, "
        "а церковный колокол звонил каждый час.",
        "Когда взошло солнце, долина была похожа на озеро. Лодки медленно двигались между крышами, и рыбаки, "
        "которые знали течения лучше всех, провели их в безопасное место.",
        "Вода спадала три недели. Ратуша стала одновременно кухней, больницей и школой, и никто не жаловался "
        "на шум.",
    ),
    "zh": (
        "那个老广播节目一开始就发布了暴风雨警报。农民们被告知要在天黑之前把牛赶回棚里，港务长也关闭了港口，直到第二天早上。",
        "在村子里，面包师整夜都让烤炉烧着，这样风终于停下来的时候，每个人都能有面包吃。",
        "孩子们用一台沙沙作响的收音机听天气预报，他们的奶奶则讲起她年轻时记得的那场大洪水。",
        "到了半夜，雨下得非常大，河水漫过了那座古老的石桥，镇长请所有住在河边的家庭搬到山上的学校去。",
        "志愿者们沿着狭窄的小路把毯子、灯和一箱箱食物运上山，一边走一边唱歌给自己打气，教堂的钟每个小时都会敲响。",
        "太阳升起的时候，山谷看起来就像一个湖。小船在屋顶之间慢慢地移动，比谁都熟悉水流的渔民们把它们带到了安全的地方。",
        "洪水过了三个星期才退去。镇政府同时成了厨房、医院和学校，没有人抱怨吵闹。",
    ),
}

# espeak-ng voices for the languages above.
VOICES = {"en": "en-us", "fr": "fr-fr", "de": "de", "es": "es", "it": "it", "pt": "pt", "pl": "pl", "ru": "ru",
          "zh": "cmn"}
