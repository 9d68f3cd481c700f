"""Held-out enterprise roster generator for evaluating the dedup CSV command.

Written independently of the matcher and of ``bench/dedup_generate.py``: it models how
real Chinese enterprise rosters vary, not what any matcher handles. Every row carries the
true firm id and the variation families applied to it (in a separate truth file), so
precision and recall can be reported per family (``bench/dedup_score.py``).

    python bench/roster_heldout.py --records 50000 --seed 101 \
        --out roster.csv --truth truth.csv

Output ``roster.csv``: ``record_id,name,district,uscc,address,headcount`` (the CSV
command's input). Output ``truth.csv``: ``record_id,firm_id,group_id,families,negatives``
where ``families`` and ``negatives`` are ``|``-separated labels (``family:detail``).

Streaming: firms are generated one group at a time, rows are spread over temporary
bucket files, and each bucket is shuffled in memory, so memory stays bounded by one
bucket (``--bucket-rows``) whatever ``--records`` is. All data is fictional.
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import os
import random
import tempfile
import zlib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

# --------------------------------------------------------------------------------------
# Reference data
# --------------------------------------------------------------------------------------

USCC_CHARSET = "0123456789ABCDEFGHJKLMNPQRTUWXY"
USCC_VALUE = {c: i for i, c in enumerate(USCC_CHARSET)}
USCC_WEIGHTS = [pow(3, i, 31) for i in range(17)]
ORG_WEIGHTS = [3, 7, 9, 10, 5, 8, 4, 2]
CITY_REGION = "510100"

# Codes that exist in real credit codes but not in the 2012 district list: districts
# renamed after counties became districts (a firm registered later carries the new code).
RENAMED_REGIONS = {
    "510122": ("510116", "双流区"),
    "510124": ("510117", "郫都区"),
    "510132": ("510118", "新津区"),
}


def uscc_check_char(body17: str) -> str:
    """The GB 32100-2015 check character for the first 17 characters."""
    total = sum(USCC_VALUE[c] * w for c, w in zip(body17, USCC_WEIGHTS, strict=True))
    return USCC_CHARSET[(31 - total % 31) % 31]


def uscc_is_valid(code: str) -> bool:
    """True when ``code`` is 18 characters of the charset with a correct check character."""
    if len(code) != 18 or any(c not in USCC_VALUE for c in code):
        return False
    return uscc_check_char(code[:17]) == code[17]


def org_check_char(body8: str) -> str:
    """The GB 11714 organisation-code check character (positions 9-17 of a USCC)."""
    total = sum(int(c, 36) * w for c, w in zip(body8, ORG_WEIGHTS, strict=True))
    c = 11 - total % 11
    return "X" if c == 10 else ("0" if c == 11 else str(c))


def load_districts() -> list[dict]:
    data = json.loads((ROOT / "config" / "districts.json").read_text(encoding="utf-8"))
    return data["districts"]


# Where firms operate: the urban districts hold most of them.
DISTRICT_WEIGHT = {
    "510104": 9,
    "510105": 9,
    "510106": 10,
    "510107": 11,
    "510108": 9,
    "510109": 12,
    "510112": 6,
    "510113": 3,
    "510114": 6,
    "510115": 4,
    "510121": 2,
    "510122": 7,
    "510124": 4,
    "510129": 1.5,
    "510131": 1,
    "510132": 2,
    "510181": 2.5,
    "510182": 2,
    "510183": 1.5,
    "510184": 2,
}

# Characters of trade names (字号), commonest first (drawn with a Zipf-like skew).
TRADE_CHARS = (
    "华兴鑫盛源达恒泰隆昌瑞丰通宏宇天成金福德佳祥和安康利新嘉欣锦蓉蜀峰海辉明光阳博创远航"
    "腾飞龙凤鹏科信诚益众合顺发旺美乐星云江河山林森青翔凯旭晨东南西中正方越卓永久长春万"
    "千宝玉晶蓝红聚融汇润泽川岷府城都瀚驰骏豪鼎鸿运万亨晟煜琪璟铭轩浩泓澜沁怡悦雅逸尚品"
    "优志远思齐力强壮立业基石竹松柏梅兰菊荷桂茂蔚彩虹霞露霖雨雪冰清洁净宁静和平富贵荣耀"
    "扬帆舟帆驿道路桥港湾岛原野田园禾稻麦谷粮丰收实诺恩惠仁义礼智勤俭朴真善"
)
# Extra common characters, only as substitution targets of homophone typos.
EXTRA_CHARS = (
    "心馨芯新信星醒型形行幸性姓刑邢杏馨欣辛薪锌昕忻歆莘鑫"
    "话化画划桦骅铧哗滑猾花"
    "圣胜升生声笙晟剩省牲甥乘承呈程诚城丞惩澄橙秤逞骋"
    "园元原源圆员缘远苑援猿垣沅媛袁辕"
    "达答大打搭哒"
    "恒横衡亨哼珩蘅"
    "泰太态汰钛肽酞台抬苔"
    "隆龙笼聋拢垄珑胧窿"
    "昌长常场厂唱畅尝偿肠倡猖"
    "瑞锐睿蕊芮枘"
    "丰风峰锋蜂枫封疯逢冯缝凤奉讽"
    "通同铜童桐瞳彤统桶筒痛"
    "宏红洪虹鸿弘泓轰烘哄"
    "宇雨语羽予与玉育欲域遇裕誉豫愈渝榆瑜禹"
    "天田甜添填恬阗"
    "金今津斤巾进近尽晋劲锦紧谨"
    "福富付府复副傅腹夫服伏扶浮符幅辅"
    "德得"
    "佳家加嘉甲价驾架假稼"
    "祥香乡相湘箱详想享响翔象项向像巷"
    "安按案暗岸俺鞍"
    "康抗亢炕慷糠"
    "利力立丽历励例理李里礼栗莉俐"
    "锦紧尽进近仅谨劲晋"
    "蓉容荣融溶熔绒榕戎"
    "海还孩害亥骇"
    "辉回会汇惠慧灰徽晖挥"
    "明名鸣铭茗冥"
    "光广逛桄"
    "阳杨洋扬羊仰养样漾"
    "博波伯勃柏薄泊搏"
    "航行杭夯"
    "腾藤疼滕誊"
    "鹏朋蓬棚彭澎膨碰"
    "科可克课颗柯珂轲"
    "诚城成承乘程呈橙"
    "益意义亿艺易毅逸翼谊溢懿"
    "众中重种钟忠终仲"
    "顺舜瞬"
    "旺王望往网忘汪"
    "美每梅媒玫眉煤镁"
    "凯开铠恺楷慨"
    "旭序绪续蓄叙许徐"
    "晨辰臣陈沉尘忱宸"
    "卓桌灼浊茁酌琢"
    "鼎定顶丁订钉盯"
    "豪好号浩郝毫嚎昊皓"
    "泽则择责"
    "润闰"
    "聚巨具句剧据俱惧距炬"
    "汇会惠慧绘荟"
    "永勇涌泳咏拥"
    "久九酒玖旧救就"
    "万晚完玩湾弯碗婉皖"
    "宝保报抱堡饱鲍葆"
    "晶精经京惊景静境井径"
    "蓝兰栏拦岚澜篮览"
)

# Characters that look alike (typed from handwriting or OCR of a stamped form).
SIMILAR_SHAPE = {
    "己": "已",
    "未": "末",
    "土": "士",
    "日": "曰",
    "人": "入",
    "大": "太",
    "天": "夫",
    "王": "玉",
    "玉": "王",
    "木": "本",
    "千": "干",
    "由": "田",
    "宇": "字",
    "泰": "秦",
    "锦": "绵",
    "晶": "品",
    "佳": "住",
    "祥": "详",
    "博": "傅",
    "腾": "滕",
    "凤": "风",
    "科": "料",
    "益": "盖",
    "美": "姜",
    "林": "材",
    "凯": "岂",
    "晨": "晟",
    "东": "车",
    "正": "止",
    "方": "万",
    "万": "方",
    "卓": "桌",
    "永": "水",
    "宝": "室",
    "蓝": "篮",
    "鸿": "鸠",
    "达": "这",
    "恒": "桓",
    "昌": "冒",
    "瑞": "端",
    "华": "毕",
    "兴": "光",
    "盛": "威",
    "鑫": "鑫",
    "源": "原",
    "康": "庚",
    "汇": "江",
    "诚": "城",
    "川": "州",
    "峰": "锋",
    "成": "戌",
    "机": "杌",
    "械": "械",
    "贸": "货",
    "商": "啇",
    "务": "各",
    "技": "枝",
    "料": "科",
    "材": "林",
    "建": "健",
    "筑": "築",
    "电": "由",
    "子": "孑",
    "饮": "钦",
    "限": "恨",
    "责": "贵",
    "任": "仕",
    "司": "同",
    "公": "分",
    "份": "分",
}

# (industry word, category, English, short form or "")
INDUSTRIES = [
    ("机械制造", "machinery", "Machinery Manufacturing", "机械"),
    ("机械设备", "machinery", "Machinery Equipment", "机械"),
    ("精密机械", "machinery", "Precision Machinery", "精密"),
    ("汽车零部件", "auto", "Auto Parts", "汽配"),
    ("汽车销售服务", "auto", "Auto Sales and Service", "汽车"),
    ("科技", "tech", "Technology", ""),
    ("信息技术", "tech", "Information Technology", "信息"),
    ("网络科技", "tech", "Network Technology", "网络"),
    ("软件开发", "tech", "Software Development", "软件"),
    ("电子科技", "electronics", "Electronic Technology", "电子"),
    ("电子元器件", "electronics", "Electronic Components", "电子"),
    ("商贸", "trade", "Trading", ""),
    ("贸易", "trade", "Trading", ""),
    ("进出口贸易", "trade", "Import and Export", "进出口"),
    ("食品", "food", "Food", ""),
    ("食品加工", "food", "Food Processing", "食品"),
    ("餐饮管理", "catering", "Catering Management", "餐饮"),
    ("火锅餐饮", "catering", "Hotpot Catering", "火锅"),
    ("物业管理", "property", "Property Management", "物业"),
    ("房地产开发", "realestate", "Real Estate Development", "地产"),
    ("置业", "realestate", "Real Estate", ""),
    ("建筑工程", "construction", "Construction Engineering", "建筑"),
    ("建筑劳务", "construction", "Construction Labour Services", "劳务"),
    ("装饰工程", "decoration", "Decoration Engineering", "装饰"),
    ("钢结构工程", "construction", "Steel Structure Engineering", "钢构"),
    ("建材", "materials", "Building Materials", ""),
    ("物流", "logistics", "Logistics", ""),
    ("供应链管理", "logistics", "Supply Chain Management", "供应链"),
    ("医药", "pharma", "Pharmaceutical", ""),
    ("生物科技", "pharma", "Biotechnology", "生物"),
    ("医疗器械", "medical", "Medical Devices", "医疗"),
    ("服装", "garment", "Garment", ""),
    ("服饰", "garment", "Apparel", ""),
    ("纺织", "textile", "Textile", ""),
    ("鞋业", "shoes", "Footwear", ""),
    ("印务", "printing", "Printing", ""),
    ("印刷", "printing", "Printing", ""),
    ("包装材料", "packaging", "Packaging Materials", "包装"),
    ("化工", "chemical", "Chemical", ""),
    ("塑料制品", "plastics", "Plastic Products", "塑料"),
    ("环保科技", "environment", "Environmental Technology", "环保"),
    ("农业开发", "agriculture", "Agricultural Development", "农业"),
    ("农业科技", "agriculture", "Agricultural Technology", "农业"),
    ("茶业", "tea", "Tea", ""),
    ("酒业", "liquor", "Liquor", ""),
    ("酒店管理", "hotel", "Hotel Management", "酒店"),
    ("旅游开发", "tourism", "Tourism Development", "旅游"),
    ("教育咨询", "education", "Education Consulting", "教育"),
    ("人力资源", "hr", "Human Resources", "人力"),
    ("劳务派遣", "hr", "Labour Dispatch", "劳务"),
    ("保安服务", "security", "Security Services", "保安"),
    ("家政服务", "housekeeping", "Housekeeping Services", "家政"),
    ("文化传媒", "media", "Culture and Media", "文化"),
    ("广告", "media", "Advertising", ""),
    ("投资管理", "finance", "Investment Management", "投资"),
    ("实业", "industrial", "Industrial", ""),
    ("新能源", "energy", "New Energy", "能源"),
    ("电力工程", "power", "Electric Power Engineering", "电力"),
    ("家具", "furniture", "Furniture", ""),
    ("五金", "hardware", "Hardware", ""),
    ("水泥制品", "materials", "Cement Products", "水泥"),
    ("汽车运输", "transport", "Motor Transport", "运输"),
]
INDUSTRY_CATEGORY = {w: c for w, c, _, _ in INDUSTRIES}
INDUSTRY_EN = {w: e for w, _, e, _ in INDUSTRIES}
INDUSTRY_SHORT = {w: s for w, _, _, s in INDUSTRIES}

# Legal forms with their share and English.
LEGAL_FORMS = [
    ("有限公司", 48, "Co., Ltd."),
    ("有限责任公司", 27, "Limited Liability Company"),
    ("股份有限公司", 7, "Joint Stock Co., Ltd."),
    ("厂", 4, "Factory"),
    ("经营部", 3, "Business Department"),
    ("合伙企业（有限合伙）", 2, "L.P."),
]
FORM_EN = {f: e for f, _, e in LEGAL_FORMS}
FORM_EN.update({"集团有限公司": "Group Co., Ltd.", "集团有限责任公司": "Group Co., Ltd."})

# Region written in a registered name: (prefix, share). "" = none, "(成都)" = in brackets.
NAME_REGIONS = [
    ("成都", 34),
    ("成都市", 12),
    ("四川", 14),
    ("四川省", 4),
    ("DISTRICT_FULL", 8),  # 成都市锦江区
    ("DISTRICT", 6),  # 锦江区
    ("BRACKET", 8),  # 华兴（成都）机械
    ("", 14),
]
REGION_EN = {"成都": "Chengdu", "成都市": "Chengdu", "四川": "Sichuan", "四川省": "Sichuan"}

# State-owned sector groups: 成都城市建设投资集团 -> 成都城投, 四川交通投资集团 -> 川交投.
SECTORS = [
    ("城市建设", "城"),
    ("交通", "交"),
    ("文化旅游", "文旅"),
    ("产业", "产"),
    ("环境", "环"),
    ("水务", "水"),
    ("轨道交通", "轨"),
    ("农业", "农"),
    ("能源", "能"),
    ("医疗健康", "医"),
    ("教育", "教"),
    ("科技", "科"),
]
SECTOR_INDUSTRIES = [("投资", "投"), ("发展", "发"), ("建设", "建")]
SECTOR_REGIONS = [("成都市", ["成都", "蓉"]), ("四川省", ["川", "四川"])]

SURNAMES = "王李张刘陈杨赵黄周吴徐孙胡朱高林何郭马罗梁宋郑谢韩唐冯于董萧程曹袁邓许傅沈曾彭吕"
GIVEN = "伟芳娜敏静丽强磊军洋勇艳杰娟涛明超秀霞平刚桂英华建国志红玉兰春梅德斌鹏宇浩"

ROAD_STEMS = (
    "人民 建设 解放 蜀都 光华 府河 东风 红星 新华 青龙 金沙 永丰 玉林 双楠 芳草 "
    "科华 天府 交子 益州 锦绣 沙湾 营门 望江 华阳 驷马 抚琴 清江 羊西 营康 高升 "
    "桂溪 武青 簇桥 机投 双华 龙华 建华 蜀汉 青华 迎宾 文家 红光 犀浦 团结 安靖 "
    "德源 郫花 万春 柳城 涌泉 永宁 公平 寿安 和盛 花源 金华 兴隆 正兴 大件 航空 "
    "工业 物流 创业 科技 振兴 文化 学府 滨河 江安 望丛 鹃城"
).split()
ROAD_SUFFIXES = ["路", "大道", "街", "北路", "南路", "东路", "西路", "中路", "一段", "二段", "三段"]
CN_DIGITS = "〇一二三四五六七八九"
ORDINALS = "一二三四五六七八九"

FULLWIDTH = {chr(c): chr(c + 0xFEE0) for c in range(0x21, 0x7F)}
FULLWIDTH[" "] = "\u3000"
HALFWIDTH = {v: k for k, v in FULLWIDTH.items()}
INSERTS = [" ", " ", "\u3000", "·", "-", ",", ".", "、", "，", "_", "/"]

# --------------------------------------------------------------------------------------
# Variation families and their weights (per duplicate row, name families)
# --------------------------------------------------------------------------------------

NAME_FAMILIES = [
    ("drop_char", 16),
    ("homophone", 10),
    ("similar_shape", 4),
    ("space_punct", 7),
    ("width", 5),
    ("traditional", 3),
    ("abbreviation", 6),
    ("industry_short", 6),
    ("region_form", 12),
    ("legal_form", 12),
    ("english", 1.2),
    ("pinyin", 1.2),
    ("old_name", 0),  # only firms with a former name; weight set per firm
    ("legal_rep", 1.2),
]
NAME_FAMILY_SET = frozenset(f for f, _ in NAME_FAMILIES)
# Families whose name replaces the whole name (other name families are not applied then).
REPLACING = {"english", "pinyin", "old_name", "legal_rep", "abbreviation"}

ALL_FAMILIES = [
    "drop_char",
    "homophone",
    "similar_shape",
    "space_punct",
    "width",
    "traditional",
    "abbreviation",
    "industry_short",
    "region_form",
    "legal_form",
    "english",
    "pinyin",
    "old_name",
    "legal_rep",
    "district_wrong",
    "district_from_code",
    "district_format",
    "district_missing",
    "uscc_missing",
    "uscc_partial",
    "uscc_typo",
    "uscc_format",
    "address_format",
    "address_missing",
    "address_alt",
    "headcount_noise",
    "headcount_missing",
]
ALL_NEGATIVES = [
    "same_trade_other_industry",
    "homophone_brand",
    "near_name",
    "branch",
    "same_name_other_district",
]

# Cluster sizes 1..6: most firms appear once, a few many times.
CLUSTER_SIZES = [1, 2, 3, 4, 5, 6]
CLUSTER_WEIGHTS = [46, 25, 13, 8, 5, 3]


class Firm:
    """One true enterprise and everything a roster row may say about it."""

    __slots__ = (
        "fid",
        "gid",
        "region",
        "bracket",
        "trade",
        "industry",
        "form",
        "branch",
        "district",
        "uscc",
        "addr",
        "addr2",
        "headcount",
        "rep",
        "old_name",
        "negatives",
        "sector_abbr",
    )

    def __init__(self) -> None:
        self.region = ""
        self.bracket = ""
        self.trade = ""
        self.industry = ""
        self.form = "有限公司"
        self.branch = ""
        self.district = ""
        self.uscc = ""
        self.addr = ()
        self.addr2 = ()
        self.headcount = 0
        self.rep = ""
        self.old_name = ""
        self.negatives: list[str] = []
        self.sector_abbr: list[str] = []
        self.gid = ""
        self.fid = ""

    def name(self) -> str:
        b = f"（{self.bracket}）" if self.bracket else ""
        return f"{self.region}{self.trade}{b}{self.industry}{self.form}{self.branch}"


class Generator:
    """Seeded, streaming roster generator (one group of related firms at a time)."""

    def __init__(self, seed: int) -> None:
        self.rng = random.Random(seed)
        self.seed = seed
        self.districts = load_districts()
        self.dist_by_code = {d["code"]: d for d in self.districts}
        self.dist_codes = [d["code"] for d in self.districts]
        self.dist_weights = [DISTRICT_WEIGHT.get(c, 1) for c in self.dist_codes]
        self.region_names = {d["code"]: d["name"] for d in self.districts}
        self.region_names[CITY_REGION] = "成都市"
        self.region_names["510000"] = "四川省"
        for new, name in RENAMED_REGIONS.values():
            self.region_names[new] = name
        rng = self.rng
        # Trade characters with a Zipf-like weight (rank r -> 1 / (r + 8)).
        chars = list(dict.fromkeys(TRADE_CHARS))
        self.trade_chars = chars
        self.trade_cum = _cumulative([1.0 / (r + 8) for r in range(len(chars))])
        self.roads = {
            code: [
                rng.choice(ROAD_STEMS) + rng.choice(ROAD_SUFFIXES)
                for _ in range(25 + int(DISTRICT_WEIGHT.get(code, 1) * 6))
            ]
            for code in self.dist_codes
        }
        self.industry_words = [w for w, _, _, _ in INDUSTRIES]
        self.form_choices = [f for f, _, _ in LEGAL_FORMS]
        self.form_cum = _cumulative([w for _, w, _ in LEGAL_FORMS])
        self.region_choices = [r for r, _ in NAME_REGIONS]
        self.region_cum = _cumulative([w for _, w in NAME_REGIONS])
        self.family_names = [f for f, _ in NAME_FAMILIES]
        self.family_weights = [w for _, w in NAME_FAMILIES]
        self.size_cum = _cumulative(CLUSTER_WEIGHTS)
        self._build_char_tables()
        self._opencc = None
        # Bloom filter over (trade name, industry): a city registry never holds two
        # firms with one trade name and one industry, except the deliberate negatives.
        self.bloom = bytearray(1 << 25)
        self.firm_serial = 0
        self.group_serial = 0
        # Affine permutation of firm serials -> unique 8-digit organisation code bodies.
        self.org_mult = 48271
        self.org_add = rng.randrange(10**8)
        sectors = [
            (s, ind, reg) for s in SECTORS for ind in SECTOR_INDUSTRIES for reg in SECTOR_REGIONS
        ]
        rng.shuffle(sectors)
        self.sectors = sectors[:40]

    # ---------------------------------------------------------------- tables

    def _build_char_tables(self) -> None:
        from pypinyin import lazy_pinyin

        chars = set(TRADE_CHARS) | set(EXTRA_CHARS)
        for w in self.industry_words:
            chars.update(w)
        for s, _ in SECTORS:
            chars.update(s)
        chars.update("有限责任公司股份集团分厂经营部合伙企业营业部成都四川省市区县")
        for d in self.districts:
            chars.update(d["name"])
        chars = sorted(chars)
        py = lazy_pinyin(chars)
        self.pinyin = dict(zip(chars, py, strict=True))
        groups: dict[str, list[str]] = {}
        for c, p in self.pinyin.items():
            groups.setdefault(p, []).append(c)
        self.homophones = {c: [o for o in groups[p] if o != c] for c, p in self.pinyin.items()}

    def py(self, text: str, sep: str = "") -> str:
        return sep.join(self.pinyin.get(c, c) for c in text)

    def traditional(self, text: str) -> str:
        if self._opencc is None:
            import opencc

            self._opencc = opencc.OpenCC("s2t")
        return self._opencc.convert(text)

    # ---------------------------------------------------------------- draws

    def pick(self, choices, cum):
        x = self.rng.random() * cum[-1]
        lo, hi = 0, len(cum) - 1
        while lo < hi:
            mid = (lo + hi) // 2
            if cum[mid] < x:
                lo = mid + 1
            else:
                hi = mid
        return choices[lo]

    def trade_char(self) -> str:
        return self.pick(self.trade_chars, self.trade_cum)

    def new_trade(self) -> str:
        r = self.rng.random()
        n = 2 if r < 0.62 else (3 if r < 0.92 else 4)
        out = []
        while len(out) < n:
            c = self.trade_char()
            if c not in out:
                out.append(c)
        t = "".join(out)
        if self.rng.random() < 0.015:  # a few brands carry Latin letters or digits
            t = self.rng.choice(["E", "U", "3D", "5G", "AI", "K"]) + t
        return t

    def _bloom_keys(self, key: str) -> tuple[int, int]:
        b = key.encode("utf-8")
        m = (len(self.bloom) << 3) - 1
        return zlib.crc32(b) & m, zlib.crc32(b, 0x5BD1E995) & m

    def registered(self, trade: str, industry: str) -> bool:
        k1, k2 = self._bloom_keys(trade + "/" + industry)
        return bool(self.bloom[k1 >> 3] & (1 << (k1 & 7))) and bool(
            self.bloom[k2 >> 3] & (1 << (k2 & 7))
        )

    def register(self, trade: str, industry: str) -> None:
        for k in self._bloom_keys(trade + "/" + industry):
            self.bloom[k >> 3] |= 1 << (k & 7)

    def free_trade(self, industry: str) -> str:
        for _ in range(60):
            t = self.new_trade()
            if not self.registered(t, industry):
                return t
        # A crowded namespace: fall back to a longer trade name.
        while True:
            t = self.new_trade() + self.trade_char()
            if not self.registered(t, industry):
                return t

    def district(self) -> str:
        return self.pick(self.dist_codes, _cumulative_cached(self))

    def person(self) -> str:
        rng = self.rng
        g = rng.choice(GIVEN) if rng.random() < 0.3 else rng.choice(GIVEN) + rng.choice(GIVEN)
        return rng.choice(SURNAMES) + g

    def address(self, code: str) -> tuple:
        rng = self.rng
        road = rng.choice(self.roads[code])
        num = int(rng.paretovariate(1.2) * 8) % 2000 + 1
        detail = ""
        r = rng.random()
        if r < 0.25:
            building, unit = rng.randint(1, 12), rng.randint(1, 4)
            room = f"{rng.randint(1, 30)}{rng.randint(1, 9):02d}"
            detail = f"{building}栋{unit}单元{room}号"
        elif r < 0.4:
            detail = f"附{rng.randint(1, 30)}号"
        elif r < 0.5:
            detail = f"{rng.randint(1, 30)}楼"
        return (code, road, num, detail)

    def uscc(self, region: str, kind: str = "1") -> str:
        self.firm_serial += 1
        body = (self.firm_serial * self.org_mult + self.org_add) % 10**8
        body8 = f"{body:08d}"
        org = body8 + org_check_char(body8)
        first17 = "9" + kind + region + org
        return first17 + uscc_check_char(first17)

    def code_region(self, district: str) -> str:
        r = self.rng.random()
        if r < 0.35:
            return CITY_REGION
        if r < 0.85:
            if district in RENAMED_REGIONS and self.rng.random() < 0.5:
                return RENAMED_REGIONS[district][0]
            return district
        # registered where the firm used to be
        return self.district()

    def headcount(self) -> int:
        return max(1, min(20000, int(math.exp(self.rng.gauss(2.9, 1.25)))))

    # ---------------------------------------------------------------- firms

    def base_firm(self, district: str | None = None, industry: str | None = None) -> Firm:
        rng = self.rng
        f = Firm()
        f.district = district or self.district()
        f.industry = industry or rng.choice(self.industry_words)
        f.trade = self.free_trade(f.industry)
        self.register(f.trade, f.industry)
        self.set_region(f)
        f.form = self.pick(self.form_choices, self.form_cum)
        if f.form in ("厂", "经营部") and f.region in ("四川", "四川省"):
            f.form = "有限公司"
        self.finish(f)
        return f

    def set_region(self, f: Firm) -> None:
        reg = self.pick(self.region_choices, self.region_cum)
        f.bracket = ""
        if reg == "DISTRICT_FULL":
            f.region = "成都市" + self.dist_by_code[f.district]["name"]
        elif reg == "DISTRICT":
            f.region = self.dist_by_code[f.district]["name"]
        elif reg == "BRACKET":
            f.region = ""
            f.bracket = self.rng.choice(["成都", "成都", "四川"])
        else:
            f.region = reg

    def finish(self, f: Firm, code_region: str | None = None) -> None:
        rng = self.rng
        f.uscc = self.uscc(code_region or self.code_region(f.district))
        f.addr = self.address(f.district)
        f.addr2 = self.address(f.district if rng.random() < 0.7 else self.district())
        f.headcount = self.headcount()
        f.rep = self.person()
        if rng.random() < 0.07:
            f.old_name = self.former_name(f)

    def former_name(self, f: Firm) -> str:
        rng = self.rng
        b = f"（{f.bracket}）" if f.bracket else ""
        r = rng.random()
        if r < 0.4:  # changed its business
            ind = rng.choice(self.industry_words)
            return f"{f.region}{f.trade}{b}{ind}{f.form}{f.branch}"
        if r < 0.75:  # changed its trade name
            return f"{f.region}{self.new_trade()}{b}{f.industry}{f.form}{f.branch}"
        # changed its region and form (e.g. moved up from a district registration)
        reg = rng.choice(["成都市" + self.dist_by_code[f.district]["name"], "四川", "成都"])
        form = "有限责任公司" if f.form == "有限公司" else "有限公司"
        return f"{reg}{f.trade}{f.industry}{form}{f.branch}"

    def group(self) -> list[Firm]:
        """One firm, or a group of firms that are hard negatives of one another."""
        rng = self.rng
        self.group_serial += 1
        gid = f"G{self.group_serial}"
        r = rng.random()
        first = None
        firms: list[Firm]
        if r < 0.004 and self.sectors:
            firms = self.sector_group()
        elif r < 0.06:  # same trade name, other industries (often a group's subsidiaries)
            first = self.base_firm()
            firms = [first]
            cats = {INDUSTRY_CATEGORY[first.industry]}
            for _ in range(rng.choice([1, 1, 1, 2, 3])):
                ind = rng.choice(
                    [w for w in self.industry_words if INDUSTRY_CATEGORY[w] not in cats]
                )
                cats.add(INDUSTRY_CATEGORY[ind])
                o = self.clone_name(first, industry=ind)
                if o is not None:
                    firms.append(o)
            for o in firms:
                o.negatives.append("same_trade_other_industry")
        elif r < 0.105:  # homophone brands in one business (鑫旭 / 欣旭)
            first = self.base_firm()
            firms = [first]
            t = self.homophone_variant(first.trade)
            if t and not self.registered(t, first.industry):
                dist = first.district if rng.random() < 0.6 else None
                o = self.clone_name(first, trade=t, district=dist)
                firms.append(o)
            for o in firms:
                o.negatives.append("homophone_brand")
        elif r < 0.155:  # near names in one district
            first = self.base_firm()
            firms = [first]
            for _ in range(rng.choice([1, 1, 2])):
                kind = rng.random()
                if kind < 0.4:
                    t = self.near_trade(first.trade)
                    o = self.clone_name(first, trade=t, district=first.district)
                elif kind < 0.7:  # same trade, related industry in one category
                    cat = INDUSTRY_CATEGORY[first.industry]
                    sib = [w for w in self.industry_words if INDUSTRY_CATEGORY[w] == cat]
                    sib = [w for w in sib if w != first.industry] or [
                        rng.choice(self.industry_words)
                    ]
                    o = self.clone_name(first, industry=rng.choice(sib), district=first.district)
                else:  # trade name extended by a character (华兴 / 华兴达)
                    t = first.trade + self.trade_char()
                    o = self.clone_name(first, trade=t, district=first.district)
                if o is not None:
                    firms.append(o)
            for o in firms:
                o.negatives.append("near_name")
        elif r < 0.2:  # a parent and its branches
            first = self.base_firm()
            firms = [first] + self.branches(first, rng.choice([1, 1, 2, 2, 3, 4]))
            for o in firms:
                o.negatives.append("branch")
        elif r < 0.225:  # the same name registered in another district
            first = self.base_firm()
            o = self.clone_name(first, district=self.other_district(first.district), check=False)
            d = self.dist_by_code[o.district]["name"]
            first.region = "成都市" + self.dist_by_code[first.district]["name"]
            first.bracket = ""
            o.region, o.bracket = rng.choice([d, "成都市" + d]), ""
            firms = [first, o]
            for o in firms:
                o.negatives.append("same_name_other_district")
        else:
            firms = [self.base_firm()]
        for f in firms:
            f.gid = gid
        return firms

    def clone_name(
        self,
        src: Firm,
        trade: str | None = None,
        industry: str | None = None,
        district: str | None = None,
        check: bool = True,
    ) -> Firm | None:
        f = Firm()
        f.trade = trade or src.trade
        f.industry = industry or src.industry
        if check:
            if self.registered(f.trade, f.industry):
                return None
            self.register(f.trade, f.industry)
        f.district = district or (src.district if self.rng.random() < 0.5 else self.district())
        f.region, f.bracket = src.region, src.bracket
        if self.rng.random() < 0.3:
            self.set_region(f)
        f.form = (
            src.form if self.rng.random() < 0.7 else self.pick(self.form_choices, self.form_cum)
        )
        self.finish(f)
        return f

    def homophone_variant(self, trade: str) -> str | None:
        idx = [i for i, c in enumerate(trade) if self.homophones.get(c)]
        if not idx:
            return None
        i = self.rng.choice(idx)
        return trade[:i] + self.rng.choice(self.homophones[trade[i]]) + trade[i + 1 :]

    def near_trade(self, trade: str) -> str:
        i = self.rng.randrange(len(trade))
        while True:
            c = self.trade_char()
            if c != trade[i] and c not in self.homophones.get(trade[i], ()):
                return trade[:i] + c + trade[i + 1 :]

    def other_district(self, code: str) -> str:
        while True:
            d = self.district()
            if d != code:
                return d

    def branches(self, parent: Firm, n: int) -> list[Firm]:
        rng = self.rng
        out = []
        used = set()
        ordinal = 0
        for _ in range(n):
            b = Firm()
            b.trade, b.industry, b.form = parent.trade, parent.industry, parent.form
            b.region, b.bracket = parent.region, parent.bracket
            b.district = parent.district if rng.random() < 0.35 else self.district()
            r = rng.random()
            if r < 0.55 and b.district not in used:
                used.add(b.district)
                b.branch = self.dist_by_code[b.district]["short"] + "分公司"
            elif r < 0.85:
                ordinal += 1
                b.branch = f"第{ORDINALS[min(ordinal, 9) - 1]}分公司"
            else:
                b.branch = self.dist_by_code[b.district]["short"] + rng.choice(
                    ["营业部", "分厂", "门店"]
                )
                if b.branch in used:
                    ordinal += 1
                    b.branch = f"第{ORDINALS[min(ordinal, 9) - 1]}分公司"
                used.add(b.branch)
            self.finish(b, code_region=b.district if rng.random() < 0.7 else None)
            b.old_name = ""
            out.append(b)
        return out

    def sector_group(self) -> list[Firm]:
        rng = self.rng
        (sector, s_abbr), (ind, i_abbr), (reg, reg_abbrs) = self.sectors.pop()
        f = Firm()
        f.district = rng.choice(["510104", "510105", "510107", "510109"])
        f.region, f.trade, f.industry = reg, sector, ind
        f.form = rng.choice(["集团有限公司", "集团有限责任公司"])
        self.finish(f, code_region=CITY_REGION if reg == "成都市" else "510000")
        f.sector_abbr = [a + s_abbr + i_abbr for a in reg_abbrs] + [s_abbr + i_abbr + "集团"]
        firms = [f] + self.branches(f, rng.choice([2, 3, 4, 5]))
        for o in firms:
            o.negatives.append("branch")
        return firms

    # ---------------------------------------------------------------- rows

    def rows(self, f: Firm, n: int):
        """``n`` roster rows of firm ``f``: (name, district, uscc, address, headcount,
        families)."""
        for k in range(n):
            yield self.row(f, first=(k == 0))

    def row(self, f: Firm, first: bool) -> tuple:
        rng = self.rng
        fam: list[str] = []
        # ---- name
        r = rng.random()
        if first:
            n_fam = 0 if r < 0.6 else (1 if r < 0.92 else 2)
        else:
            n_fam = 0 if r < 0.18 else (1 if r < 0.66 else (2 if r < 0.93 else 3))
        chosen: list[str] = []
        weights = self.family_weights
        if f.old_name:
            weights = weights[:]
            weights[self.family_names.index("old_name")] = 10
        while len(chosen) < n_fam:
            c = rng.choices(self.family_names, weights)[0]
            if c in chosen or (c in REPLACING and any(x in REPLACING for x in chosen)):
                if len(chosen) >= 1 and rng.random() < 0.3:
                    break
                continue
            chosen.append(c)
        name = self.render_name(f, chosen, fam)
        # ---- district
        dist = self.dist_by_code[f.district]["name"]
        r = rng.random()
        code_region = f.uscc[2:8]
        if r < 0.04:
            dist = self.dist_by_code[self.other_district(f.district)]["name"]
            fam.append("district_wrong")
        elif r < 0.12 and code_region != f.district:
            dist = self.region_names.get(code_region, "成都市")
            fam.append("district_from_code")
        elif r < 0.2:
            d = self.dist_by_code[f.district]
            dist = rng.choice(
                [d["short"], "成都市" + d["name"], "成都" + d["short"], d["name"] + " "]
            )
            fam.append("district_format")
        elif r < 0.25:
            dist = ""
            fam.append("district_missing")
        # ---- credit code
        code = f.uscc
        r = rng.random()
        if r < (0.42 if first else 0.5):
            code = ""
            fam.append("uscc_missing")
        else:
            r = rng.random()
            if r < 0.05:
                code = self.partial_code(code)
                fam.append("uscc_partial")
            elif r < 0.1:
                code = self.mistype_code(code)
                fam.append("uscc_typo")
            elif r < 0.14:
                code = self.format_code(code)
                fam.append("uscc_format")
        # ---- address
        r = rng.random()
        if r < 0.25:
            addr = ""
            fam.append("address_missing")
        else:
            a = f.addr
            if f.addr2 and rng.random() < 0.06:
                a = f.addr2
                fam.append("address_alt")
            fmt = 0 if rng.random() < 0.5 else rng.randrange(1, 8)
            if fmt:
                fam.append("address_format")
            addr = self.render_address(a, fmt)
        # ---- head count
        r = rng.random()
        if r < 0.3:
            hc = ""
            fam.append("headcount_missing")
        elif r < 0.5:
            hc = str(self.noisy_headcount(f.headcount))
            fam.append("headcount_noise")
        else:
            hc = str(f.headcount)
        return name, dist, code, addr, hc, fam

    def render_name(self, f: Firm, chosen: list[str], fam: list[str]) -> str:
        rng = self.rng
        replacing = [c for c in chosen if c in REPLACING]
        if replacing:
            c = replacing[0]
            name = self.replaced_name(f, c, fam)
            if name is not None:
                return name
        region, trade, bracket, industry, form, branch = (
            f.region,
            f.trade,
            f.bracket,
            f.industry,
            f.form,
            f.branch,
        )
        bstyle = ("（", "）")
        post: list[str] = []
        for c in chosen:
            if c in REPLACING:
                continue
            if c == "drop_char":
                parts = ["trade", "industry", "form"] + (["branch"] if branch else [])
                wts = [3, 3, 3] + ([3] if branch else [])
                where = rng.choices(parts, wts)[0]
                if where == "trade" and len(trade) >= 2:
                    trade = _drop(rng, trade)
                elif where == "industry" and len(industry) >= 2:
                    industry = _drop(rng, industry)
                elif where == "form" and len(form) >= 2:
                    form = _drop(rng, form)
                elif where == "branch":
                    branch = _drop(rng, branch)
                else:
                    continue
                fam.append(f"drop_char:{where}")
            elif c == "homophone":
                if rng.random() < 0.8:
                    t = self.homophone_variant(trade)
                    if t:
                        trade = t
                        fam.append("homophone:trade")
                        continue
                t = self.homophone_variant(industry)
                if t:
                    industry = t
                    fam.append("homophone:industry")
            elif c == "similar_shape":
                done = False
                for part in rng.sample(["trade", "industry", "form"], 3):
                    s = {"trade": trade, "industry": industry, "form": form}[part]
                    idx = [i for i, ch in enumerate(s) if SIMILAR_SHAPE.get(ch, ch) != ch]
                    if idx:
                        i = rng.choice(idx)
                        s = s[:i] + SIMILAR_SHAPE[s[i]] + s[i + 1 :]
                        if part == "trade":
                            trade = s
                        elif part == "industry":
                            industry = s
                        else:
                            form = s
                        fam.append(f"similar_shape:{part}")
                        done = True
                        break
                if not done:
                    continue
            elif c == "industry_short":
                s = INDUSTRY_SHORT.get(industry, "")
                if s:
                    industry = s
                    fam.append("industry_short")
            elif c == "region_form":
                opts = ["drop", "city", "city_shi", "province", "bracket_half", "bracket_full"]
                how = rng.choice(opts)
                if how == "drop" and (region or bracket):
                    region, bracket = "", ""
                elif how == "city" and region != "成都":
                    region, bracket = "成都", ""
                elif how == "city_shi" and region != "成都市":
                    region, bracket = "成都市", ""
                elif how == "province" and region not in ("四川", "四川省"):
                    region, bracket = rng.choice(["四川", "四川省"]), ""
                elif how.startswith("bracket") and not bracket:
                    region, bracket = "", rng.choice(["成都", "四川"])
                    if how == "bracket_half":
                        bstyle = ("(", ")")
                elif how == "bracket_half" and bracket:
                    bstyle = ("(", ")")
                else:
                    region, bracket = "", ""
                    if not (f.region or f.bracket):
                        region = "成都"
                fam.append("region_form")
            elif c == "legal_form":
                if form == "有限公司":
                    form = rng.choice(["有限责任公司", "公司", "", "有限"])
                elif form == "有限责任公司":
                    form = rng.choice(["有限公司", "公司", "", "责任有限公司"])
                elif form == "股份有限公司":
                    form = rng.choice(["股份公司", "有限公司", ""])
                elif form.startswith("集团"):
                    form = rng.choice(["集团", "集团公司", "集团有限公司", ""])
                else:
                    form = rng.choice(["", "有限公司"])
                fam.append("legal_form")
            elif c in ("space_punct", "width", "traditional"):
                post.append(c)
        b = f"{bstyle[0]}{bracket}{bstyle[1]}" if bracket else ""
        name = f"{region}{trade}{b}{industry}{form}{branch}"
        for c in post:
            if c == "space_punct":
                name = self.punctuate(name, trade, region)
                fam.append("space_punct")
            elif c == "width":
                w = self.flip_width(name)
                if w != name:
                    name = w
                    fam.append("width")
            elif c == "traditional":
                t = self.traditional(name)
                if t != name:
                    name = t
                    fam.append("traditional")
        return name

    def replaced_name(self, f: Firm, c: str, fam: list[str]) -> str | None:
        rng = self.rng
        if c == "old_name" and f.old_name:
            fam.append("old_name")
            return f.old_name
        if c == "legal_rep":
            fam.append("legal_rep")
            return f.rep
        if c == "english":
            reg = REGION_EN.get(f.region or f.bracket, "Chengdu" if rng.random() < 0.6 else "")
            trade = self.py(f.trade).capitalize()
            parts = [reg, trade, INDUSTRY_EN.get(f.industry, self.py(f.industry).capitalize())]
            form = FORM_EN.get(f.form, "Co., Ltd.")
            name = " ".join(p for p in parts if p) + " " + form
            if f.branch:
                name += " " + (self.py(f.branch[:-3]).capitalize() + " Branch")
            if rng.random() < 0.3:
                name = name.upper()
            fam.append("english")
            return name
        if c == "pinyin":
            r = rng.random()
            if r < 0.4:  # the trade name in pinyin inside a Chinese name
                name = f"{f.region}{self.py(f.trade).capitalize()}{f.industry}{f.form}{f.branch}"
            elif r < 0.7:
                name = " ".join(
                    self.py(p) for p in (f.region, f.trade, f.industry, f.form, f.branch) if p
                )
            else:
                name = self.py(f.trade + f.industry).upper()
            fam.append("pinyin")
            return name
        if c == "abbreviation":
            if f.sector_abbr:
                fam.append("abbreviation:initials")
                return rng.choice(f.sector_abbr)
            r = rng.random()
            short = INDUSTRY_SHORT.get(f.industry) or f.industry
            if f.branch:
                name = f"{f.trade}{short}{f.branch}"
                fam.append("abbreviation:trade_industry")
            elif r < 0.4:
                name = rng.choice(["", "成都"]) + f.trade
                fam.append("abbreviation:trade")
            elif r < 0.85 or len(f.trade) < 4:
                name = f.trade + short
                fam.append("abbreviation:trade_industry")
            else:  # first character of each two-character word (长城宽带 -> 长宽)
                name = f.trade[0] + f.trade[2] + short[:1]
                fam.append("abbreviation:initials")
            return name
        return None

    def punctuate(self, name: str, trade: str, region: str) -> str:
        rng = self.rng
        r = rng.random()
        if r < 0.15 and trade:
            return name.replace(trade, f"“{trade}”", 1)
        if r < 0.25:
            return name + rng.choice([" ", "。", ".", "，"])
        if r < 0.35 and region and name.startswith(region):
            return region + rng.choice([" ", "\u3000", "·", "-"]) + name[len(region) :]
        i = rng.randrange(1, max(2, len(name)))
        return name[:i] + rng.choice(INSERTS) + name[i:]

    def flip_width(self, name: str) -> str:
        if any(c in HALFWIDTH for c in name):
            return "".join(HALFWIDTH.get(c, c) for c in name)
        if any(c in FULLWIDTH for c in name):
            return "".join(FULLWIDTH.get(c, c) for c in name)
        return name

    def partial_code(self, code: str) -> str:
        rng = self.rng
        r = rng.random()
        if r < 0.35:  # the old organisation code alone, often with its dash
            org = code[8:17]
            return org[:8] + "-" + org[8] if rng.random() < 0.6 else org
        if r < 0.7:  # cut short
            return code[: rng.randint(10, 17)]
        return code[:8] + "…" + code[-4:] if rng.random() < 0.3 else code[2:]

    def mistype_code(self, code: str) -> str:
        rng = self.rng
        r = rng.random()
        if r < 0.4:  # letters and digits confused
            conf = {"0": "O", "1": "I", "2": "Z", "5": "S", "8": "B", "O": "0", "B": "8"}
            idx = [i for i, c in enumerate(code) if c in conf]
            if idx:
                i = rng.choice(idx)
                return code[:i] + conf[code[i]] + code[i + 1 :]
        if r < 0.7:  # two neighbours swapped
            i = rng.randrange(2, 17)
            if code[i] != code[i + 1]:
                return code[:i] + code[i + 1] + code[i] + code[i + 2 :]
        i = rng.randrange(2, 18)
        c = rng.choice([x for x in USCC_CHARSET if x != code[i]])
        return code[:i] + c + code[i + 1 :]

    def format_code(self, code: str) -> str:
        rng = self.rng
        r = rng.random()
        if r < 0.4:
            return code.lower()
        if r < 0.7:
            return "".join(FULLWIDTH.get(c, c) for c in code)
        return f"{code[:2]} {code[2:8]} {code[8:17]} {code[17]}"

    def render_address(self, a: tuple, fmt: int) -> str:
        code, road, num, detail = a
        d = self.dist_by_code[code]
        n = f"{num}号"
        if fmt == 4:
            n = f"{num}#"
        elif fmt == 5:
            n = "".join(CN_DIGITS[int(x)] for x in str(num)) + "号"
        body = road + n + detail
        if fmt == 0:
            return "成都市" + d["name"] + body
        if fmt == 1:
            return "四川省成都市" + d["name"] + body
        if fmt == 2:
            return d["name"] + body
        if fmt == 3:
            return body
        if fmt == 6:
            return "成都" + d["short"] + road + n
        if fmt == 7:
            return "四川省 成都市 " + d["name"] + " " + road + " " + n + detail
        return "成都市" + d["name"] + body

    def noisy_headcount(self, hc: int) -> int:
        rng = self.rng
        r = rng.random()
        if r < 0.4:
            return max(1, round(hc * rng.uniform(0.75, 1.3)))
        if r < 0.8:
            step = 5 if hc < 50 else 10 if hc < 200 else 50 if hc < 1000 else 100
            v = max(step, int(round(hc / step) * step))
            return v if v != hc else hc + step
        v = max(1, hc + rng.choice([-3, -2, -1, 1, 2, 5]))
        return v if v != hc else hc + 1


def _drop(rng: random.Random, s: str) -> str:
    i = rng.randrange(len(s))
    return s[:i] + s[i + 1 :]


def _cumulative(weights) -> list[float]:
    out, t = [], 0.0
    for w in weights:
        t += w
        out.append(t)
    return out


def _cumulative_cached(g: Generator) -> list[float]:
    cum = getattr(g, "_dist_cum", None)
    if cum is None:
        cum = g._dist_cum = _cumulative(g.dist_weights)
    return cum


def generate(records: int, seed: int, out: Path, truth: Path, bucket_rows: int = 200_000) -> dict:
    """Write ``records`` rows to ``out`` and their truth to ``truth``; return a summary."""
    gen = Generator(seed)
    rng_shuffle = random.Random(seed * 7919 + 1)
    n_buckets = max(1, math.ceil(records / bucket_rows))
    tmpdir = tempfile.mkdtemp(prefix="roster_", dir=str(Path(out).resolve().parent))
    buckets = [
        open(os.path.join(tmpdir, f"b{i}.tsv"), "w", encoding="utf-8", newline="\n")
        for i in range(n_buckets)
    ]
    written = 0
    firms = 0
    family_rows: dict[str, int] = {}
    try:
        while written < records:
            for f in gen.group():
                firms += 1
                f.fid = f"F{firms}"
                size = gen.pick(CLUSTER_SIZES, gen.size_cum)
                size = min(size, records - written)
                neg = "|".join(f.negatives)
                for name, dist, code, addr, hc, fam in gen.rows(f, size):
                    fams = "|".join(fam)
                    for x in fam:
                        family_rows[x] = family_rows.get(x, 0) + 1
                    line = "\t".join((name, dist, code, addr, hc, f.fid, f.gid, fams, neg))
                    buckets[rng_shuffle.randrange(n_buckets)].write(line + "\n")
                written += size
                if written >= records:
                    break
        for b in buckets:
            b.close()
        rid = 0
        with (
            open(out, "w", encoding="utf-8", newline="") as fo,
            open(truth, "w", encoding="utf-8", newline="") as ft,
        ):
            wo, wt = csv.writer(fo), csv.writer(ft)
            wo.writerow(["record_id", "name", "district", "uscc", "address", "headcount"])
            wt.writerow(["record_id", "firm_id", "group_id", "families", "negatives"])
            for i in range(n_buckets):
                p = os.path.join(tmpdir, f"b{i}.tsv")
                with open(p, encoding="utf-8", newline="\n") as fb:
                    lines = fb.read().split("\n")
                lines.pop()  # after the last newline
                rng_shuffle.shuffle(lines)
                for line in lines:
                    rid += 1
                    name, dist, code, addr, hc, fid, gid, fams, neg = line.split("\t")
                    wo.writerow([rid, name, dist, code, addr, hc])
                    wt.writerow([rid, fid, gid, fams, neg])
                del lines
                os.remove(p)
    finally:
        for b in buckets:
            if not b.closed:
                b.close()
        for p in Path(tmpdir).glob("*"):
            p.unlink()
        os.rmdir(tmpdir)
    return {"records": written, "firms": firms, "groups": gen.group_serial, "families": family_rows}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--records", type=int, required=True)
    ap.add_argument("--seed", type=int, default=101)
    ap.add_argument("--out", type=Path, required=True, help="roster CSV for the CSV command")
    ap.add_argument("--truth", type=Path, required=True, help="truth CSV (firm id, families)")
    ap.add_argument("--bucket-rows", type=int, default=200_000, help="rows shuffled in memory")
    ap.add_argument("--quiet", action="store_true")
    a = ap.parse_args(argv)
    summary = generate(a.records, a.seed, a.out, a.truth, a.bucket_rows)
    if not a.quiet:
        print(json.dumps(summary, ensure_ascii=False, sort_keys=True))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
