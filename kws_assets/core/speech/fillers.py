"""Everyday words and carrier phrases per language, for generated speech.

The demo corpus puts each keyword among *filler words* of its language, and sampled synthetic
speakers say some keywords inside *carrier phrases* (``{}`` marks the keyword).  English lists
live with their users (``connectors.demo.FILLER_WORDS``, ``config.DEFAULT_CARRIER_PHRASES``); the
lists here are for other languages.  Words are plain, frequent, free of apostrophes and hyphens
(espeak-ng reads some of those as one word with a neighbour), and spelt as espeak-ng's
dictionaries expect.
"""

from __future__ import annotations

from kws_assets.core.speech.languages import primary_subtag

FILLER_WORDS: dict[str, tuple[str, ...]] = {
    "es": (
        "por", "favor", "dime", "la", "palabra", "es", "ahora", "otra", "vez", "luego", "quizás",
        "después", "hoy", "antes", "cena", "casa", "verde", "agua", "siete", "papel", "música",
        "pequeño", "ventana", "mañana", "jardín", "nunca", "amarillo", "mesa", "gente", "número",
        "abrir", "cerrar", "río", "café", "sencillo", "libro", "perro", "gato", "ciudad", "oí",
    ),
    "fr": (
        "maintenant", "dis", "le", "mot", "est", "encore", "puis", "peut", "après", "avant",
        "dîner", "maison", "vert", "eau", "sept", "papier", "musique", "petit", "fenêtre", "matin",
        "jardin", "jamais", "jaune", "table", "gens", "nombre", "ouvrir", "fermer", "rivière",
        "café", "simple", "livre", "chien", "chat", "ville", "demain", "soleil", "toujours",
    ),
    "de": (
        "bitte", "sag", "jetzt", "das", "wort", "ist", "nächste", "wieder", "dann", "vielleicht",
        "nach", "heute", "vorher", "abendessen", "haus", "grün", "wasser", "sieben", "papier",
        "musik", "klein", "fenster", "morgen", "garten", "niemals", "gelb", "tisch", "leute",
        "nummer", "offen", "fluss", "kaffee", "einfach", "buch", "hund", "katze", "stadt",
    ),
    "it": (
        "per", "favore", "dimmi", "la", "parola", "è", "adesso", "ancora", "poi", "forse", "dopo",
        "oggi", "prima", "cena", "casa", "verde", "acqua", "sette", "carta", "musica", "piccolo",
        "finestra", "mattina", "giardino", "mai", "giallo", "tavolo", "gente", "numero", "aprire",
        "chiudere", "fiume", "caffè", "semplice", "libro", "cane", "gatto", "città",
    ),
    "nl": (
        "alsjeblieft", "zeg", "het", "woord", "is", "nu", "nog", "een", "keer", "dan", "misschien",
        "vandaag", "eerst", "huis", "groen", "water", "zeven", "papier", "muziek", "klein", "raam",
        "morgen", "tuin", "nooit", "geel", "tafel", "mensen", "nummer", "open", "rivier", "koffie",
        "boek", "hond", "kat", "stad",
    ),
    "ru": (
        "пожалуйста", "скажи", "слово", "это", "сейчас", "снова", "потом", "может", "после",
        "сегодня", "раньше", "ужин", "дом", "зелёный", "вода", "семь", "бумага", "музыка",
        "маленький", "окно", "утро", "сад", "никогда", "жёлтый", "стол", "люди", "номер",
        "открыть", "закрыть", "река", "кофе", "простой", "книга", "собака", "кошка", "город",
    ),
    "pt": (
        "por", "favor", "diga", "a", "palavra", "é", "agora", "outra", "vez", "depois", "talvez",
        "hoje", "antes", "jantar", "casa", "verde", "água", "sete", "papel", "música", "pequeno",
        "janela", "manhã", "jardim", "nunca", "amarelo", "mesa", "gente", "número", "abrir",
        "fechar", "rio", "café", "simples", "livro", "cachorro", "gato", "cidade",
    ),
}

CARRIER_PHRASES: dict[str, tuple[str, ...]] = {
    "es": ("por favor di {} otra vez", "la palabra es {}", "dije {} ahora", "oí {} hoy"),
    "fr": ("dis {} encore une fois", "le mot est {}", "je dis {} maintenant", "tu as dit {}"),
    "de": ("sag bitte {} noch einmal", "das wort ist {}", "ich sagte {} jetzt", "er hat {} gesagt"),
    "it": ("per favore dì {} ancora", "la parola è {}", "ho detto {} adesso", "dimmi {} di nuovo"),
    "pt": ("por favor diga {} de novo", "a palavra é {}", "eu disse {} agora", "ouvi {} hoje"),
    "nl": ("zeg {} nog een keer", "het woord is {}", "ik zei {} net", "hij heeft {} gezegd"),
    "ru": ("скажи {} ещё раз", "это слово {}", "я сказал {} сейчас", "он сказал {} вчера"),
}


def filler_words(language: str) -> tuple[str, ...] | None:
    """Filler words of ``language`` (by primary subtag), or None where this module has none."""
    return FILLER_WORDS.get(primary_subtag(language))


def carrier_phrases(language: str) -> tuple[str, ...]:
    """Carrier phrases of ``language``; empty where this module has none (keywords are then
    spoken alone)."""
    return CARRIER_PHRASES.get(primary_subtag(language), ())
