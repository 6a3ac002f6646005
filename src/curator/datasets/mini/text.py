"""Sentences for the synthetic speakers: a small phrase grammar per language, drawn without repetition.

Every sentence is subject + verb + object, lengthened with a place and a time phrase to approach a target
number of words. One generator hands out sentences for all splits, so splits never share a text.
"""

from __future__ import annotations

import numpy as np

# (subjects, verbs, objects, places, times): each a phrase list; sentence = S V O [P] [T]
GRAMMAR: dict[str, tuple[tuple[str, ...], ...]] = {
    "en": (
        ("The old painter", "My younger sister", "A tired farmer", "The new teacher", "Our quiet neighbour",
         "The tall engineer", "A young doctor", "The busy baker", "His best friend", "The careful pilot",
         "A local singer", "The cheerful nurse"),
        ("carries", "paints", "finds", "repairs", "sells", "opens", "cleans", "describes", "borrows", "hides",
         "measures", "remembers"),
        ("a wooden box", "the red umbrella", "an old letter", "the broken radio", "a basket of apples",
         "the silver key", "a heavy suitcase", "the blue bicycle", "a small painting", "the kitchen window",
         "a paper map", "the garden gate"),
        ("near the harbour", "behind the station", "in the quiet library", "along the river",
         "at the market", "under the bridge", "inside the museum", "across the square", "by the old mill",
         "on the top floor"),
        ("every morning", "late at night", "before the storm", "after lunch", "on sunday afternoon",
         "during the winter", "once a week", "just before dawn"),
    ),
    "de": (
        ("Der alte Maler", "Meine kleine Schwester", "Ein müder Bauer", "Die neue Lehrerin", "Unser stiller Nachbar",
         "Der große Ingenieur", "Eine junge Ärztin", "Der fleißige Bäcker", "Sein bester Freund",
         "Die vorsichtige Pilotin", "Ein bekannter Sänger", "Die fröhliche Pflegerin"),
        ("trägt", "malt", "findet", "repariert", "verkauft", "öffnet", "putzt", "beschreibt", "leiht", "versteckt",
         "misst", "sucht"),
        ("eine hölzerne Kiste", "den roten Schirm", "einen alten Brief", "das kaputte Radio", "einen Korb Äpfel",
         "den silbernen Schlüssel", "einen schweren Koffer", "das blaue Fahrrad", "ein kleines Bild",
         "das Küchenfenster", "eine Landkarte", "das Gartentor"),
        ("am Hafen", "hinter dem Bahnhof", "in der Bibliothek", "am Fluss entlang", "auf dem Markt",
         "unter der Brücke", "im Museum", "über den Platz", "bei der alten Mühle", "im obersten Stock"),
        ("jeden Morgen", "spät in der Nacht", "vor dem Sturm", "nach dem Mittagessen", "am Sonntagnachmittag",
         "im Winter", "einmal pro Woche", "kurz vor Sonnenaufgang"),
    ),
    "es": (
        ("El viejo pintor", "Mi hermana pequeña", "Un granjero cansado", "La nueva maestra", "Nuestro vecino callado",
         "El ingeniero alto", "Una joven doctora", "El panadero ocupado", "Su mejor amigo", "La piloto prudente",
         "Un cantante famoso", "La enfermera alegre"),
        ("lleva", "pinta", "encuentra", "repara", "vende", "abre", "limpia", "describe", "presta", "esconde",
         "mide", "busca"),
        ("una caja de madera", "el paraguas rojo", "una carta antigua", "la radio rota", "una cesta de manzanas",
         "la llave de plata", "una maleta pesada", "la bicicleta azul", "un cuadro pequeño", "la ventana de la cocina",
         "un mapa de papel", "la puerta del jardín"),
        ("junto al puerto", "detrás de la estación", "en la biblioteca", "a lo largo del río", "en el mercado",
         "debajo del puente", "dentro del museo", "por la plaza", "cerca del molino", "en el último piso"),
        ("cada mañana", "tarde por la noche", "antes de la tormenta", "después de comer", "el domingo por la tarde",
         "durante el invierno", "una vez por semana", "antes del amanecer"),
    ),
    "fr": (
        ("Le vieux peintre", "Ma petite sœur", "Un fermier fatigué", "La nouvelle institutrice", "Notre voisin discret",
         "Le grand ingénieur", "Une jeune médecin", "Le boulanger pressé", "Son meilleur ami", "La pilote prudente",
         "Un chanteur connu", "L'infirmière joyeuse"),
        ("porte", "peint", "trouve", "répare", "vend", "ouvre", "nettoie", "décrit", "emprunte", "cache", "mesure",
         "cherche"),
        ("une boîte en bois", "le parapluie rouge", "une vieille lettre", "la radio cassée", "un panier de pommes",
         "la clé en argent", "une lourde valise", "le vélo bleu", "un petit tableau", "la fenêtre de la cuisine",
         "une carte en papier", "le portail du jardin"),
        ("près du port", "derrière la gare", "dans la bibliothèque", "le long de la rivière", "au marché",
         "sous le pont", "dans le musée", "sur la place", "près du vieux moulin", "au dernier étage"),
        ("chaque matin", "tard dans la nuit", "avant l'orage", "après le déjeuner", "le dimanche après-midi",
         "pendant l'hiver", "une fois par semaine", "juste avant l'aube"),
    ),
    "zh": (
        ("老画家", "我的妹妹", "一个疲惫的农民", "新来的老师", "我们安静的邻居", "高个子工程师", "年轻的医生",
         "忙碌的面包师", "他最好的朋友", "细心的飞行员", "一位歌手", "快乐的护士"),
        ("搬着", "画着", "找到了", "修好了", "卖掉了", "打开了", "擦干净了", "描述了", "借走了", "藏起了",
         "量了量", "想起了"),
        ("一个木箱", "那把红伞", "一封旧信", "那台坏收音机", "一篮苹果", "那把银钥匙", "一个重箱子",
         "那辆蓝色自行车", "一幅小画", "厨房的窗户", "一张纸地图", "花园的大门"),
        ("在港口旁边", "在车站后面", "在安静的图书馆里", "沿着河边", "在市场上", "在桥下", "在博物馆里",
         "在广场对面", "在老磨坊旁", "在顶楼"),
        ("每天早上", "深夜", "暴风雨之前", "午饭以后", "星期天下午", "冬天的时候", "每周一次", "天亮之前"),
    ),
}
"""Phrase lists per language. Mandarin word order is S T P V O; the others S V O P T."""

CJK_CHARS_PER_WORD = 3.0
"""Mandarin has no spaces: three characters count as one word when sizing a sentence."""


def word_count(text: str, language: str) -> float:
    """Words of ``text`` (Mandarin: characters / ``CJK_CHARS_PER_WORD``)."""
    if language == "zh":
        return sum(1 for c in text if "\u4e00" <= c <= "\u9fff") / CJK_CHARS_PER_WORD
    return float(len(text.split()))


def _compose(language: str, parts: dict[str, str]) -> str:
    if language == "zh":
        order = ("s", "t", "p", "v", "o")
        return "".join(parts[k] for k in order if k in parts) + "。"
    words = " ".join(parts[k] for k in ("s", "v", "o", "p", "t") if k in parts)
    return words + "."


class SentenceSource:
    """Hands out sentences of roughly a target length, never the same sentence twice."""

    def __init__(self, seed: int) -> None:
        self._rng = np.random.default_rng(seed)
        self._used: set[str] = set()

    def sentence(self, language: str, target_words: float, max_tries: int = 1000) -> str:
        """A new sentence in ``language`` whose word count is closest to ``target_words`` among its forms."""
        subj, verb, obj, place, time = GRAMMAR[language]
        for _ in range(max_tries):
            pick = {k: pool[int(self._rng.integers(len(pool)))]
                    for k, pool in zip("svopt", (subj, verb, obj, place, time), strict=True)}
            forms = [{k: pick[k] for k in keys} for keys in ("svo", "svop", "svot", "svopt")]
            texts = [_compose(language, f) for f in forms]
            best = min(texts, key=lambda t: (abs(word_count(t, language) - target_words), t))
            if best not in self._used:
                self._used.add(best)
                return best
        raise RuntimeError(f"ran out of distinct {language} sentences after {len(self._used)}; "
                           f"lower dataset.mini.n_* or extend curator/datasets/mini/text.py")
