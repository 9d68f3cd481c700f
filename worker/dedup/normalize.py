"""Normalisation of Chinese enterprise names, districts, addresses and codes for dedup.

A registered name is region + trade name (字号) + industry + legal form; this module
splits a raw name into those parts so that matching compares like with like.
Everything here is pure and cached: each distinct raw string is processed once.
"""

from __future__ import annotations

import json
import re
import sys
import unicodedata
import zlib
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from server.identifiers import clean_code, uscc_is_valid, uscc_shape_ok

DISTRICTS_PATH = Path(__file__).resolve().parents[2] / "config" / "districts.json"

# Legal-form suffixes, mapped to a canonical form (company law: 有限责任公司 = 有限公司,
# 股份有限公司 = 股份公司). Stripped repeatedly from the end, longest first.
_LEGAL_FORMS: dict[str, str] = {
    "股份有限公司": "jsc",
    "股份公司": "jsc",
    "有限责任公司": "ltd",
    "有限公司": "ltd",
    "责任公司": "ltd",
    "集团公司": "group",
    "集团": "group",
    "总公司": "ltd",
    "公司": "ltd",
    "普通合伙": "partnership",
    "有限合伙": "partnership",
    "合伙企业": "partnership",
    "个人独资企业": "sole",
    "独资企业": "sole",
    "个体工商户": "sole",
    "专业合作社": "coop",
    "合作社": "coop",
    "厂": "factory",
    "商行": "shop",
    "经营部": "shop",
    "门市部": "shop",
    "商店": "shop",
    "工作室": "studio",
    # A name cut short or with its words swapped, as typed into rosters (成都华兴机械有限,
    # 华兴机械责任有限公司).
    "有限": "ltd",
    "有限责任": "ltd",
    "责任有限公司": "ltd",
    "股份有限": "jsc",
}


def _one_dropped(word: str) -> list[str]:
    """The spellings of word with one character left out (有限公司 → 有限司, 限公司 …)."""
    return [word[:i] + word[i + 1 :] for i in range(len(word))]


# A character typed wrong inside a legal form (有恨公司: a look-alike; 有线公司: a same-sound
# slip) leaves it recognisable: every legal form of four or more characters is also
# recognised with one character replaced, except its first (务限责任公司 is 服务 + 限责任公司,
# a dropped 有, not a replaced one).
_WILD = "\0"
_LEGAL_WILD: dict[str, str] = {}
for _form, _canon in _LEGAL_FORMS.items():
    if len(_form) >= 4:
        for _i in range(1, len(_form)):
            _LEGAL_WILD.setdefault(_form[:_i] + _WILD + _form[_i + 1 :], _canon)

# A cadre drops a character anywhere, also inside the legal form (有限司, 有限责任公): every
# legal form of four or more characters is also recognised with one character missing
# (shorter ones would leave one or two characters that trade names use).
for _form, _canon in list(_LEGAL_FORMS.items()):
    if len(_form) >= 4:
        for _v in _one_dropped(_form):
            _LEGAL_FORMS.setdefault(_v, _canon)

# Industry words → category. Kept apart from the trade name because 华兴机械 and
# 华兴食品 are different enterprises, while 华兴机械 and 华兴机械制造 are one.
_INDUSTRY: dict[str, str] = {}
# Within a category, "|" separates businesses that are related but not one (汽车销售 /
# 汽车配件): two similar names of different sub-businesses are not merged unseen.
_SUBINDUSTRY: dict[str, str] = {}
for _cat, _words in {
    "机械": "机械 机械制造 机械加工 机械工程 精密机械 精密 | 机械设备 | 机电 机电设备"
    " | 重工 | 机床",
    "电子": "电子 电子科技 电子技术 电子设备 电子信息 微电子 | 电器 电气 | 光电 | 数码 数码科技",
    "信息": "信息技术 信息科技 网络科技 网络技术 软件 软件开发 软件技术 数据科技 智能科技 计算机"
    " 网络 信息 软件科技 数字科技 网络信息",
    "食品": "食品 食品加工 食品科技 冷冻食品 休闲食品 食品工业 | 调味品 | 肉类加工 | 粮油",
    "餐饮": "餐饮 餐饮管理 餐饮服务 饮食文化 饮食 | 火锅",
    "酒店": "酒店 酒店管理 宾馆 旅馆",
    "建筑": "建筑 建筑工程 建设工程 建设 工程建设 土木工程 | 路桥 市政工程 | 钢结构",
    "建材": "建材 建筑材料 | 水泥 混凝土 | 玻璃 | 陶瓷 | 石材",
    "装饰": "装饰 装饰工程 装修 装饰设计 建筑装饰",
    "物业": "物业 物业管理 物业服务",
    "物流": "物流 | 运输 货运 | 仓储 | 快递 | 供应链 供应链管理",
    "贸易": "贸易 商贸 工贸 经贸 | 进出口",
    "房地产": "房地产 房地产开发 地产 | 置业",
    "医药": "医药 药业 制药 生物医药 生物制药 中药 | 医疗器械 医疗",
    "生物": "生物 生物科技 生物技术",
    "化工": "化工 化学 化工原料 | 涂料 | 塑料 塑料制品 塑胶 | 橡胶",
    # Neighbouring businesses are kept apart (a 服装 and a 纺织 firm of one brand are two).
    "服装": "服装 服饰 制衣 时装 童装",
    "纺织": "纺织 纺织品 织造 家纺 针织",
    "鞋业": "鞋业 制鞋",
    "皮具": "皮具 皮革 箱包",
    "印刷": "印务 印刷 彩印 印刷品",
    "包装": "包装 包装材料 包装制品 纸业 纸品",
    "汽车": "汽车 汽车销售 车业 | 汽车服务 汽车维修 | 汽车配件 汽配",
    "家具": "家具 家居 | 木业",
    "农业": "农业 农业科技 农业开发 种植 | 养殖 畜牧 农牧 | 果业 | 茶业 茶叶",
    "环保": "环保 环保科技 环境工程 环境科技 | 节能 节能科技 | 水务",
    "能源": "能源 新能源 | 电力 | 燃气 天然气 | 石油 | 煤业",
    "通信": "通信 通讯 通信技术 通信设备",
    "文化": "文化 文化传播 文化传媒 传媒 文化艺术 | 广告 | 影视 | 出版",
    "教育": "教育 教育咨询 培训 教育科技 职业培训",
    "咨询": "咨询 管理咨询 企业管理 | 商务咨询 | 财务咨询 会计 税务",
    "人力": "劳务 劳务派遣 | 人力资源 人才服务",
    "保安": "保安 保安服务",
    "家政": "家政 家政服务 | 清洁 清洁服务 保洁",
    "五金": "五金 五金机电 | 金属 金属制品 有色金属 | 钢材 钢铁 | 铸造 | 模具",
    "酒业": "酒业 酿酒 酒类 饮料 啤酒 白酒",
    "投资": "投资 投资管理 资产管理 | 金融 | 担保 | 融资租赁",
    "旅游": "旅游 旅行社 国际旅行社 景区",
    "百货": "百货 超市 商场 连锁",
    # Generic words say little about the business: compatible with any other industry.
    "*": "科技 实业 发展 技术 科技发展 实业发展 产业 企业 工业 商务 服务 管理 开发",
}.items():
    for _k, _group in enumerate(_words.split("|")):
        for _w in _group.split():
            _INDUSTRY[_w] = _cat
            _SUBINDUSTRY[_w] = f"{_cat}{_k}"
GENERIC_INDUSTRY = "*"
# An industry word of three or more characters is also recognised with one character
# missing (机械制造 → 机械制, 房地产 → 房产), unless that spelling is another word already.
_EXACT_INDUSTRY = dict(_INDUSTRY)
for _w, _cat in _EXACT_INDUSTRY.items():
    if len(_w) >= 3:
        for _v in _one_dropped(_w):
            if _v not in _EXACT_INDUSTRY and _v not in _LEGAL_FORMS:
                if _INDUSTRY.setdefault(_v, _cat) == _cat:
                    _SUBINDUSTRY.setdefault(_v, _SUBINDUSTRY[_w])

# An industry word typed by its sound (鞋野 for 鞋业, 齐车 for 汽车: pinyin input) or, from
# three characters, with one character replaced (机械制适) is still that word; only where
# the sound (or the pattern) belongs to one category and is no other word.
_INDUSTRY_BY_SOUND: dict[str, str | None] = {}
_INDUSTRY_WILD: dict[str, str | None] = {}


def _sound(text: str) -> str:
    return "-".join(char_pinyin(ch) for ch in text)


def _build_fuzzy_industry() -> None:
    """Fill the sound and pattern tables (on first use: char_pinyin needs its table)."""
    for w, cat in _EXACT_INDUSTRY.items():
        if len(w) >= 2:
            key = _sound(w)
            prev = _INDUSTRY_BY_SOUND.get(key, w)
            _INDUSTRY_BY_SOUND[key] = w if prev is not None and _INDUSTRY[prev] == cat else None
        if len(w) >= 3:
            for i in range(len(w)):
                pat = w[:i] + _WILD + w[i + 1 :]
                prev = _INDUSTRY_WILD.get(pat, w)
                _INDUSTRY_WILD[pat] = w if prev is not None and _INDUSTRY[prev] == cat else None


def _fuzzy_industry(tail: str) -> str | None:
    """The industry word `tail` was meant to be (same sound, or one character replaced)."""
    if not _INDUSTRY_BY_SOUND:
        _build_fuzzy_industry()
    hit = _INDUSTRY_BY_SOUND.get(_sound(tail))
    if hit is None and len(tail) >= 3:
        for i in range(len(tail)):
            hit = _INDUSTRY_WILD.get(tail[:i] + _WILD + tail[i + 1 :])
            if hit is not None:
                break
    return hit


# Branch markers at the end of a name: a branch is its own record, never its parent.
_BRANCH_RE = re.compile(
    r"(分公司|分公|分司|分厂|分店|营业部|办事处|分部|分中心|分社|分行|支行|分)$"
)
# A branch suffix cut short (青羊分) or with one character dropped (分司) is 分公司, the
# commonest kind (分厂, 分店 stay kinds of their own).
_BRANCH_KIND = {"分公": "分公司", "分司": "分公司", "分": "分公司"}
_BRANCH_ORDINAL_RE = re.compile(r"第([0-9一二三四五六七八九十百零〇两]+)$")
_ORDINAL_COMPANY_RE = re.compile(r".公司第[0-9一二三四五六七八九十百零〇两]+公司$")
_CN_DIGITS = {
    "零": 0,
    "〇": 0,
    "一": 1,
    "二": 2,
    "两": 2,
    "三": 3,
    "四": 4,
    "五": 5,
    "六": 6,
    "七": 7,
    "八": 8,
    "九": 9,
}

_BRACKETS = str.maketrans(
    {
        "【": "(",
        "】": ")",
        "[": "(",
        "]": ")",
        "〔": "(",
        "〕": ")",
        "{": "(",
        "}": ")",
        "《": "",
        "》": "",
        "<": "",
        ">": "",
        "「": "",
        "」": "",
        "『": "",
        "』": "",
    }
)
_DROP_RE = re.compile(r"[\s·・.,，、。'\"“”‘’`~!！?？:：;；/\\|\-_—–*#@&]+")
_BRACKET_GROUP_RE = re.compile(r"\(([^()]*)\)")


def _cn_number(text: str) -> int | None:
    """Parse 第N branch ordinals written in digits or Chinese numerals (up to 99)."""
    if text.isdigit():
        return int(text)
    if "十" in text:
        tens, _, units = text.partition("十")
        t = _CN_DIGITS.get(tens, 1) if tens else 1
        u = _CN_DIGITS.get(units, 0) if units else 0
        return t * 10 + u
    if all(c in _CN_DIGITS for c in text):
        return int("".join(str(_CN_DIGITS[c]) for c in text))
    return None


@lru_cache(maxsize=1)
def load_districts() -> list[dict]:
    """The district units from config/districts.json (kept as data, not code)."""
    with DISTRICTS_PATH.open(encoding="utf-8") as fh:
        return json.load(fh)["districts"]


class _Regions:
    """Region vocabulary built once from the districts file."""

    def __init__(self) -> None:
        self.district_code: dict[str, str] = {}
        prefixes = {"中国", "四川省", "四川", "成都市", "成都", "蓉城", "天府新区"}
        for d in load_districts():
            code, name, short = d["code"], d["name"], d["short"]
            for key in (code, name, short, "成都市" + name, "成都" + name, "成都" + short):
                self.district_code[key] = code
            prefixes.update((name, short))
        # Longest first so that 成都市 wins over 成都 and 龙泉驿区 over 龙泉驿.
        self.prefixes: tuple[str, ...] = tuple(sorted(prefixes, key=len, reverse=True))
        self.region_words = frozenset(prefixes)
        self.short_of_code = {d["code"]: d["short"] for d in load_districts()}


_REGIONS: _Regions | None = None


def regions() -> _Regions:
    """The region vocabulary, built on first use."""
    global _REGIONS, _REGION_LENGTHS
    if _REGIONS is None:
        _REGIONS = _Regions()
        _REGION_LENGTHS = tuple(sorted({len(w) for w in _REGIONS.region_words}, reverse=True))
    return _REGIONS


_T2S = None


def to_simplified(text: str) -> str:
    """Traditional → simplified Chinese with one OpenCC converter built on first use."""
    global _T2S
    if _T2S is None:
        import opencc

        _T2S = opencc.OpenCC("t2s")
    return _T2S.convert(text)


def clean_text(text: str | None) -> str:
    """NFKC (full → half width), simplified, upper-case, brackets unified, no spaces or
    punctuation."""
    if not text:
        return ""
    text = unicodedata.normalize("NFKC", text)
    if not text.isascii():
        text = to_simplified(text)
    text = text.upper().translate(_BRACKETS)
    return _DROP_RE.sub("", text)


# Toneless pinyin: one table char → syllable, filled once per distinct character, and
# each syllable gets one private-use character so that a name's pinyin is a string of
# the same length as the name and string metrics treat same-sound characters as equal.
# The syllable's character is fixed by the pinyin data, not by the order names arrive in:
# records normalised in different processes (the CSV command's workers) compare equal.
_PINYIN: dict[str, str] = {}
_SYLLABLE_CODE: dict[str, str] = {}


def char_pinyin(ch: str) -> str:
    """The toneless pinyin of one character (the character itself when it has none)."""
    py = _PINYIN.get(ch)
    if py is None:
        if "\u3400" <= ch <= "\u9fff":
            from pypinyin import Style, lazy_pinyin

            py = lazy_pinyin(ch, style=Style.NORMAL)[0]
        else:
            py = ch
        _PINYIN[ch] = py
    return py


def _syllable_codes() -> dict[str, str]:
    """Every toneless syllable of the pinyin data → its private-use character (U+E000 on,
    in sorted order of the syllables)."""
    if not _SYLLABLE_CODE:
        from pypinyin.constants import PINYIN_DICT

        tones = str.maketrans(dict.fromkeys("\u0300\u0301\u030c\u0304"))
        found: set[str] = set()
        for readings in PINYIN_DICT.values():
            for reading in readings.split(","):
                syl = unicodedata.normalize("NFD", reading).translate(tones)
                found.add(unicodedata.normalize("NFC", syl).replace("ü", "v"))
        for i, syl in enumerate(sorted(found)):
            _SYLLABLE_CODE[syl] = chr(0xE000 + i)
    return _SYLLABLE_CODE


def syllable_code(syl: str) -> str:
    """One character standing for a toneless syllable, the same in every process."""
    code = _syllable_codes().get(syl)
    if code is None:
        if len(syl) == 1 and not "\ue000" <= syl <= "\uf8ff":
            code = syl  # a letter, digit or sign stands for itself
        else:
            # A reading the data did not list (or a private-use character in the name):
            # a fixed character of the supplementary private-use plane.
            code = chr(0xF0000 + zlib.crc32(syl.encode("utf-8")) % 0xFFFE)
        _SYLLABLE_CODE[syl] = code
    return code


def pinyin_key(text: str) -> str:
    """The name written as one private-use character per toneless syllable."""
    codes = _SYLLABLE_CODE if _SYLLABLE_CODE else _syllable_codes()
    out = []
    for ch in text:
        syl = char_pinyin(ch)
        code = codes.get(syl)
        out.append(code if code is not None else syllable_code(syl))
    return "".join(out)


def pinyin_text(text: str) -> str:
    """Readable toneless pinyin, space separated (for explanations and keys on disk)."""
    return " ".join(char_pinyin(ch) for ch in text)


@dataclass(frozen=True, slots=True)
class NameParts:
    """A name split into the parts that matching compares."""

    core: str  # trade name (字号), the identity-bearing part
    industry: str  # industry category ("" unknown, "*" generic)
    industry_words: str
    subindustry: str  # the business inside the category ("" unknown)
    legal: str  # canonical legal form ("" when absent)
    branch: str  # "" for a head office, else qualifier|kind (e.g. "锦江|分公司", "#2|分公司")
    region: str  # region words found and removed
    py: str  # pinyin_key(core)


def _strip_region_prefix(text: str, found: list[str]) -> str:
    """Remove leading region words while at least two characters of name remain."""
    words = regions().region_words
    lengths = _REGION_LENGTHS
    changed = True
    while changed:
        changed = False
        n = len(text)
        for ln in lengths:
            if n - ln >= 2 and text[:ln] in words:
                found.append(text[:ln])
                text = text[ln:]
                changed = True
                break
    return text


def _strip_legal(text: str) -> tuple[str, str]:
    """Remove legal-form suffixes from the end; return the rest and the outermost canonical form."""
    legal = ""
    changed = True
    while changed:
        changed = False
        n = len(text)
        for ln in _LEGAL_LENGTHS:
            if n > ln:
                tail = text[-ln:]
                canon = _LEGAL_FORMS.get(tail)
                if canon is None and ln >= 4 and n - ln >= 2:
                    for i in range(1, ln):
                        canon = _LEGAL_WILD.get(tail[:i] + _WILD + tail[i + 1 :])
                        if canon is not None:
                            break
                if canon is not None:
                    text = text[:-ln]
                    # The outermost suffix (seen first) is the legal form; inner ones are group
                    # words.
                    if not legal:
                        legal = canon
                    changed = True
                    break
    return text, legal


_LEGAL_SUFFIXES = tuple(sorted(_LEGAL_FORMS.items(), key=lambda kv: len(kv[0]), reverse=True))
# Suffix/prefix lookups go by length (longest first) instead of scanning every word.
_LEGAL_LENGTHS = tuple(sorted({len(w) for w in _LEGAL_FORMS}, reverse=True))
_INDUSTRY_LENGTHS = tuple(sorted({len(w) for w in _INDUSTRY}, reverse=True))
_REGION_LENGTHS: tuple[int, ...] = ()


def _split_branch(text: str) -> tuple[str, str]:
    """Split 'parent + qualifier + 分公司' into the parent name and a branch label."""
    if _ORDINAL_COMPANY_RE.search(text):
        text = text[:-2] + "分公司"  # 第三公司: 分 dropped from 第三分公司
    m = _BRANCH_RE.search(text)
    if not m or m.start() == 0:
        return text, ""
    kind = _BRANCH_KIND.get(m.group(1), m.group(1))
    head = text[: m.start()]
    if m.group(1) in ("分司", "分公") and head.endswith(("有限", "责任", "股份")):
        return head + "公司", ""  # 有限分司: 有限公司 with a look-alike, not a branch
    qualifier = ""
    om = _BRANCH_ORDINAL_RE.search(head)
    if om:
        n = _cn_number(om.group(1))
        qualifier = f"#{n}" if n is not None else om.group(1)
        head = head[: om.start()]
    else:
        # The qualifier is whatever follows the parent's legal form (华兴有限公司锦江分公司).
        cut = -1
        for suffix, _ in _LEGAL_SUFFIXES:
            pos = head.rfind(suffix)
            if pos > 0 and pos + len(suffix) > cut:
                cut = pos + len(suffix)
        if cut > 0:
            qualifier, head = head[cut:], head[:cut]
        else:
            for p in regions().prefixes:
                if head.endswith(p) and len(head) > len(p) + 1:
                    qualifier, head = p, head[: -len(p)]
                    break
    reg = regions()
    if qualifier and qualifier not in reg.district_code and qualifier not in reg.region_words:
        # A character left over from a mistyped legal form (有限公同龙泉驿): the district
        # the qualifier ends with is the qualifier.
        for k in range(1, len(qualifier) - 1):
            if qualifier[k:] in reg.district_code or qualifier[k:] in reg.region_words:
                qualifier = qualifier[k:]
                break
    if m.group(1) == "分" and not (
        qualifier in reg.district_code or qualifier in reg.region_words or om
    ):
        return text, ""  # a name ending in 分 without a district before it: no branch
    code = reg.district_code.get(qualifier)
    if code:
        qualifier = reg.short_of_code[code]
    elif qualifier.endswith(("市", "区", "县", "省")) and qualifier[:-1] in reg.region_words:
        qualifier = qualifier[:-1]
    return head, f"{qualifier}|{kind}"


def _strip_industry(text: str) -> tuple[str, list[str]]:
    """Remove industry words from the end while at least two characters of name remain."""
    words: list[str] = []
    changed = True
    while changed:
        changed = False
        n = len(text)
        for ln in _INDUSTRY_LENGTHS:
            if n - ln >= 2 and text[-ln:] in _INDUSTRY:
                words.append(text[-ln:])
                text = text[:-ln]
                changed = True
                break
        if not changed:
            # Nothing exact: a word typed by its sound or with one character wrong.
            for ln in _INDUSTRY_LENGTHS:
                if ln >= 2 and n - ln >= 2:
                    hit = _fuzzy_industry(text[-ln:])
                    if hit is not None:
                        words.append(hit)
                        text = text[:-ln]
                        changed = True
                        break
    return text, words


# --- names written in Latin letters: pinyin (Fazhangli, MEIYUAN) and English ------------
# Words of English names as Chinese firms translate them (a general vocabulary, not a
# list of any roster's names): legal forms go, industry and region words are translated,
# the rest is read as pinyin and written as one character per syllable (a character of
# that sound), so that 梅源 and MEIYUAN share a sound, a blocking key and a comparison.
_EN_LEGAL = frozenset(
    "CO LTD LIMITED LIABILITY COMPANY CORP CORPORATION INC LLC LP PLC GROUP HOLDINGS "
    "PARTNERSHIP JOINT STOCK SHARE SHARES STUDIO FACTORY BRANCH".split()
)
_EN_STOP = frozenset("AND OF THE FOR".split())
_EN_WORDS = {
    "CHENGDU": "成都",
    "SICHUAN": "四川",
    "TECHNOLOGY": "科技",
    "TECH": "科技",
    "SCIENCE": "科技",
    "INDUSTRIAL": "实业",
    "INDUSTRY": "实业",
    "DEVELOPMENT": "发展",
    "TRADING": "贸易",
    "TRADE": "贸易",
    "COMMERCE": "商贸",
    "IMPORT": "进出口",
    "EXPORT": "进出口",
    "MACHINERY": "机械",
    "MACHINE": "机械",
    "MECHANICAL": "机械",
    "ELECTRONIC": "电子",
    "ELECTRONICS": "电子",
    "ELECTRIC": "电器",
    "ELECTRICAL": "电气",
    "POWER": "电力",
    "ENERGY": "能源",
    "SOFTWARE": "软件",
    "NETWORK": "网络",
    "INFORMATION": "信息",
    "COMMUNICATION": "通信",
    "COMMUNICATIONS": "通信",
    "FOOD": "食品",
    "FOODS": "食品",
    "CATERING": "餐饮",
    "RESTAURANT": "餐饮",
    "HOTEL": "酒店",
    "CONSTRUCTION": "建筑",
    "ENGINEERING": "工程",
    "DECORATION": "装饰",
    "MATERIALS": "建材",
    "PROPERTY": "物业",
    "ESTATE": "房地产",
    "REALTY": "房地产",
    "LOGISTICS": "物流",
    "TRANSPORT": "运输",
    "TRANSPORTATION": "运输",
    "PHARMACEUTICAL": "医药",
    "PHARMACY": "医药",
    "MEDICAL": "医疗",
    "BIOTECHNOLOGY": "生物科技",
    "CHEMICAL": "化工",
    "CHEMICALS": "化工",
    "GARMENT": "服装",
    "GARMENTS": "服装",
    "CLOTHING": "服装",
    "APPAREL": "服饰",
    "TEXTILE": "纺织",
    "TEXTILES": "纺织",
    "SHOES": "鞋业",
    "PRINTING": "印刷",
    "PACKAGING": "包装",
    "AUTOMOBILE": "汽车",
    "AUTO": "汽车",
    "FURNITURE": "家具",
    "AGRICULTURE": "农业",
    "AGRICULTURAL": "农业",
    "ENVIRONMENTAL": "环保",
    "CULTURE": "文化",
    "CULTURAL": "文化",
    "MEDIA": "传媒",
    "ADVERTISING": "广告",
    "EDUCATION": "教育",
    "TRAINING": "培训",
    "CONSULTING": "咨询",
    "CONSULTANCY": "咨询",
    "MANAGEMENT": "管理",
    "LABOUR": "劳务",
    "LABOR": "劳务",
    "DISPATCH": "派遣",
    "SECURITY": "保安",
    "CLEANING": "清洁",
    "HOUSEKEEPING": "家政",
    "HARDWARE": "五金",
    "METAL": "金属",
    "STEEL": "钢铁",
    "INVESTMENT": "投资",
    "TRAVEL": "旅游",
    "TOURISM": "旅游",
    "SUPERMARKET": "超市",
    "SERVICE": "服务",
    "SERVICES": "服务",
    "SUPPLY": "供应链",
    "CHAIN": "",
    "WINE": "酒业",
    "TEA": "茶业",
    "COMPONENTS": "元器件",
    "PARTS": "配件",
    "EQUIPMENT": "设备",
    "PRODUCTS": "制品",
}
_LATIN_RUN_RE = re.compile(r"[A-Za-z]+(?:[\s.,&'’()（）-]+[A-Za-z]+)*")
_SYLLABLE_CHAR: dict[str, str] = {}


def _syllable_chars() -> dict[str, str]:
    """Toneless syllable → one character of that sound (the first in code point order)."""
    if not _SYLLABLE_CHAR:
        from pypinyin.constants import PINYIN_DICT

        tones = str.maketrans(dict.fromkeys("\u0300\u0301\u030c\u0304"))
        for cp in range(0x4E00, 0x9FA6):
            reading = PINYIN_DICT.get(cp)
            if reading:
                syl = unicodedata.normalize("NFD", reading.split(",", 1)[0]).translate(tones)
                syl = unicodedata.normalize("NFC", syl).replace("ü", "v")
                if char_pinyin(chr(cp)) == syl:
                    _SYLLABLE_CHAR.setdefault(syl, chr(cp))
    return _SYLLABLE_CHAR


def _pinyin_chars(word: str) -> str | None:
    """A run of toneless pinyin (FAZHANGLI) as one character per syllable, fewest
    syllables first; None when it is not pinyin."""
    table = _syllable_chars()
    w = word.lower().replace("ü", "v")
    n = len(w)
    best: list[list[str] | None] = [None] * (n + 1)
    best[0] = []
    for i in range(n):
        if best[i] is None:
            continue
        for ln in range(1, min(6, n - i) + 1):
            ch = table.get(w[i : i + ln])
            if ch is not None:
                cand = [*best[i], ch]
                cur = best[i + ln]
                if cur is None or len(cand) < len(cur):
                    best[i + ln] = cand
    return "".join(best[n]) if best[n] else None


def _latin_run(run: str) -> str:
    """One run of Latin words as the Chinese name parts it stands for."""
    out: list[str] = []
    legal = False
    for word in re.findall(r"[A-Za-z]+", run):
        up = word.upper()
        if up in _EN_LEGAL:
            legal = legal or up in ("CO", "LTD", "LIMITED", "COMPANY", "CORP", "INC", "LLC")
        elif up in _EN_WORDS:
            out.append(_EN_WORDS[up])
        elif up in _EN_STOP or len(up) == 1:
            continue  # and, of; the letters of L.P.
        else:
            chars = _pinyin_chars(word) if len(word) >= 2 else None
            out.append(chars if chars is not None else up)
    return "".join(out) + ("有限公司" if legal else "")


def romanised(raw: str) -> str:
    """A name with its Latin-letter runs of three or more letters read as pinyin or
    English (成都市Fazhangli汽车销售服务 → 成都市<fa><zhang><li>汽车销售服务); short runs (an E
    in 成都E福鑫) and names without Latin letters are returned as they are."""
    if not re.search(r"[A-Za-z]{3}", raw):
        return raw
    return _LATIN_RUN_RE.sub(
        lambda m: _latin_run(m.group(0)) if re.search(r"[A-Za-z]{3}", m.group(0)) else m.group(0),
        raw,
    )


@lru_cache(maxsize=1 << 20)
def normalize_name(raw: str) -> NameParts:
    """Split a raw enterprise name into region, trade name, industry, legal form and branch."""
    text = clean_text(romanised(unicodedata.normalize("NFKC", raw)))
    found: list[str] = []
    text, branch = _split_branch(text)

    # Brackets: a region in brackets (华星(成都)机械) goes, other content stays as text.
    def _bracket(m: re.Match[str]) -> str:
        inner = m.group(1)
        if inner in regions().region_words or inner in _LEGAL_FORMS or not inner:
            found.append(inner)
            return ""
        return inner

    text = _BRACKET_GROUP_RE.sub(_bracket, text).replace("(", "").replace(")", "")
    text, legal = _strip_legal(text)
    text = _strip_region_prefix(text, found)
    text, ind_words = _strip_industry(text)
    # A region can sit between the trade name and the industry (华兴成都机械).
    if len(text) > 3:
        for p in regions().prefixes:
            if text.endswith(p) and len(text) - len(p) >= 2:
                found.append(p)
                text = text[: -len(p)]
                break
    text = _strip_region_prefix(text, found)
    cats = [_INDUSTRY[w] for w in ind_words]
    specific = [c for c in cats if c != GENERIC_INDUSTRY]
    # The business is the head word, the last specific one (建筑劳务 is labour services,
    # 汽车运输 transport; 电子科技 electronics, the generic 科技 says nothing).
    industry = specific[0] if specific else (GENERIC_INDUSTRY if cats else "")
    sub = ""
    for w in reversed(ind_words):
        if _INDUSTRY[w] == industry:
            sub = _SUBINDUSTRY.get(w, "")
            break
    # Small repeated values are interned: at city scale there are millions of them.
    intern = sys.intern
    return NameParts(
        core=text,
        industry=intern(industry),
        industry_words=intern("".join(reversed(ind_words))),
        subindustry=intern(sub),
        legal=intern(legal),
        branch=intern(branch),
        region=intern("".join(found)),
        py=pinyin_key(text),
    )


@lru_cache(maxsize=4096)
def district_in_region(region: str) -> str:
    """The district code named inside a name's region words (成都市锦江区… → 510104), or ""."""
    if not region:
        return ""
    reg = regions()
    for key, code in reg.district_code.items():
        if len(key) >= 2 and not key.isdigit() and key in region:
            return code
    return ""


def district_of_code(code: str) -> str:
    """The district whose region code (positions 3–8) a credit code carries, or ""."""
    if len(code) != 18:
        return ""
    region = code[2:8]
    return region if region in regions().short_of_code else ""


@lru_cache(maxsize=1 << 16)
def normalize_district(raw: str | None) -> str:
    """A district as its code from config/districts.json, or the cleaned text when unknown."""
    text = clean_text(raw)
    if not text:
        return ""
    reg = regions()
    for candidate in (text, text.removeprefix("四川省"), text.removeprefix("四川")):
        code = reg.district_code.get(candidate)
        if code:
            return code
    return text


_ADDR_PREFIX_RE = re.compile(r"^(中国)?(四川省?)?(成都市?)?")


_ADDR_NUMBER_RE = re.compile(
    r"([零〇一二两三四五六七八九十百千]+)(?=[号號楼栋幢层室单元附弄巷组社])"
)
_ADDR_WORDS = str.maketrans({"號": "号", "樓": "楼", "棟": "栋"})


def _cn_address_number(text: str) -> str:
    """A Chinese numeral of an address as digits (八十八 → 88, 一〇五 → 105), up to 9999."""
    if all(c in _CN_DIGITS for c in text):
        return "".join(str(_CN_DIGITS[c]) for c in text)
    total, cur = 0, 0
    for c in text:
        if c in _CN_DIGITS:
            cur = _CN_DIGITS[c]
        else:
            unit = {"十": 10, "百": 100, "千": 1000}[c]
            total += (cur or 1) * unit
            cur = 0
    return str(total + cur)


def normalize_address(raw: str | None) -> str:
    """An address without province/city/district prefix, punctuation or spaces; house
    numbers written in Chinese numerals become digits (红星路八十八号 = 红星路88号)."""
    text = clean_text(raw)
    if not text:
        return ""
    text = text.translate(_ADDR_WORDS)
    if _ADDR_NUMBER_RE.search(text):
        text = _ADDR_NUMBER_RE.sub(lambda m: _cn_address_number(m.group(1)), text)
    text = _ADDR_PREFIX_RE.sub("", text)
    reg = regions()
    for p in reg.prefixes:
        if text.startswith(p) and len(text) > len(p) + 2:
            text = text[len(p) :]
            break
    return text.replace("(", "").replace(")", "")


@lru_cache(maxsize=1 << 16)
def district_in_address(raw: str | None) -> str:
    """The district code an address starts with (四川省成都市彭州市府源巷… → 510182), or "".

    Only full district names count (锦江区, 彭州市): a short name may be a road (金牛大道).
    """
    text = clean_text(raw)
    if not text:
        return ""
    text = _ADDR_PREFIX_RE.sub("", text)
    reg = regions()
    for d in load_districts():
        name = d["name"]
        if text.startswith(name) and len(text) > len(name):
            return reg.district_code[name]
    return ""


def normalize_uscc(raw: str | None) -> tuple[str, bool]:
    """The cleaned credit code (or "" when it is not code-shaped) and whether its check passes."""
    code = clean_code(raw)
    if not code or not uscc_shape_ok(code):
        # A wrong-length or wrong-alphabet code is not comparable as a code.
        return "", False
    return code, uscc_is_valid(code)
