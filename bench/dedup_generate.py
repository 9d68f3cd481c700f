"""Generate fictional Chengdu enterprise records with known duplicates for the dedup benchmark.

Writes RECORDS.csv (record_id,name,district,uscc,address,headcount) and a separate truth
file (record_id,true_id). Duplicates vary as cadres' records do: region or not, region in
brackets, full-width characters, traditional characters, legal-form synonyms, spaces,
same-pinyin typos, dropped and doubled characters, missing or mistyped credit codes. Hard
negatives are distinct enterprises: branches (分公司), one brand in different businesses,
same-sound look-alikes and same names registered in different districts.

    python bench/dedup_generate.py 50000 -o /tmp/dd50k.csv --truth /tmp/dd50k.truth.csv
"""

from __future__ import annotations

import argparse
import csv
import json
import random
import re
import sys
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from server.identifiers import USCC_CHARSET, uscc_check_char  # noqa: E402

# Characters seen in trade names (字号); the order gives a rough popularity (Zipf weights).
TRADE_CHARS = (
    "华兴鑫达盛泰丰源恒通宏昌隆瑞祥福康安和顺发利金新天宇中东成龙博嘉信德永富汇泽润海蓝创亿"
    "佳美优星光辉明阳晨正诚远航鸿飞腾凯旭升荣铭峰林森川蜀蓉锦泓浩瀚澜江河湖山岳华夏亚欧环宇"
    "万千百合力众志同心贵豪雅艺彩虹晶钰铂银铜玉宝珠琳琪瑶佩馨怡悦乐欣喜庆春秋冬夏朗润晟昊"
    "昕晖曦旺益佰仟凡卓越远景智慧聪睿思维科技联合协同致诚立信守正尚品名匠精工巧艺匠心恒久"
    "长青松柏竹梅兰菊桂桃李杏枫杨柳樱荷莲芳芝茂蔚然卓尔超群领先前进开拓创新驰骋骏马雄鹰鹏程"
    "云霄雷电风雨雪霜露霞虹彤丹青紫翠碧蓝白黑赤橙黄绿灵动静安宁平泰康乾坤震巽坎离艮兑元亨"
    "贞吉祥瑞麒麟凤凰龟鹤松鼎盈丰裕富足鑫淼森焱垚磊犇骉晶品众协赢胜捷迅速迈进达远高广大宽"
    "厚实朴真善美仁义礼智信忠孝廉耻勤俭谦和敬爱慈惠恩泉溪潭渊源清澈洁净纯粹精致细腻柔刚强"
    "壮健硕伟岸崇峻巍峨嵘峥嵩岱泰华衡恒岳川流汇聚集合融通畅达顺利亨通吉庆余年丰登谷粮禾穗"
    "农耕织染陶瓷铁钢铸锻冶炼机器械具工坊作社馆阁楼台亭轩堂院府邸庄园圃苑林泊港湾津渡桥"
)
# Extra characters that share a pinyin with popular ones (兴/星/新/心/鑫/欣/馨…): typo sources.
HOMOPHONE_EXTRA = "星心薪芯昕忻歆馨型形邢行型大答搭塔新信芯锌欣兴达沓宏红洪鸿弘虹泓竑"

# Industry words by category; synonyms inside a set are spellings of one business.
INDUSTRIES: dict[str, list[list[str]]] = {
    "机械": [["机械", "机械制造"], ["机械设备"], ["机电设备", "机电"]],
    "电子": [["电子科技", "电子"], ["电器"]],
    "信息": [["信息技术", "信息科技"], ["网络科技", "网络技术"], ["软件"]],
    "食品": [["食品", "食品加工"], ["调味品"], ["粮油"]],
    "餐饮": [["餐饮管理", "餐饮"], ["火锅"]],
    "酒店": [["酒店管理", "酒店"]],
    "建筑": [["建筑工程", "建筑"], ["建设工程"], ["市政工程"]],
    "建材": [["建材", "建筑材料"], ["混凝土"]],
    "装饰": [["装饰工程", "装饰"]],
    "物业": [["物业管理", "物业服务"]],
    "物流": [["物流"], ["运输"], ["供应链管理", "供应链"]],
    "贸易": [["贸易", "商贸"], ["进出口"]],
    "房地产": [["房地产开发", "房地产"], ["置业"]],
    "医药": [["医药", "药业"], ["医疗器械"]],
    "化工": [["化工"], ["塑料制品", "塑料"]],
    "服装": [["服装", "服饰"], ["鞋业"]],
    "印刷": [["印务", "印刷"], ["包装"]],
    # extended profile only: businesses next to one another (服装 / 纺织, 印务 / 包装材料)
    "纺织": [["纺织", "纺织品"]],
    "包装": [["包装材料"]],
    "汽车": [["汽车销售"], ["汽车服务"], ["汽车配件", "汽配"]],
    "家具": [["家具"], ["木业"]],
    "农业": [["农业开发", "农业"], ["茶业"], ["养殖"]],
    "环保": [["环保科技", "环保"], ["节能科技", "节能"]],
    "能源": [["能源"], ["燃气"]],
    "通信": [["通信技术", "通信"]],
    "文化": [["文化传播"], ["传媒"], ["广告"]],
    "教育": [["教育咨询", "培训"]],
    "咨询": [["企业管理", "管理咨询"], ["商务咨询"]],
    "人力": [["劳务"], ["人力资源"]],
    "保安": [["保安服务", "保安"]],
    "家政": [["家政服务", "家政"], ["清洁服务", "保洁"]],
    "五金": [["五金"], ["金属制品"], ["钢结构"]],
    "酒业": [["酒业", "酿酒"]],
    "*": [["科技", "科技发展"], ["实业", "实业发展"]],
}
LEGAL = [
    ("有限公司", 0.5),
    ("有限责任公司", 0.28),
    ("股份有限公司", 0.08),
    ("厂", 0.06),
    ("集团有限公司", 0.04),
    ("商行", 0.04),
]
LEGAL_SYNONYMS = {
    "有限公司": ["有限责任公司"],
    "有限责任公司": ["有限公司"],
    "股份有限公司": ["股份公司"],
    "集团有限公司": ["集团有限责任公司", "集团公司"],
}
ROAD_A = (
    "人民红星蜀都天府东风建设中山解放新华青年光明滨江锦里玉林芳草科华武侯金牛一环二环三环"
    "府河沙河驷马羊西清江营门茶店双林万年府青建材龙泉航空创业交子剑南益州世纪大源"
)
CN_NUM = "一二三四五六七八九十"
FULL_WIDTH = str.maketrans({**{chr(c): chr(c + 0xFEE0) for c in range(0x21, 0x7F)}, " ": "\u3000"})


def _cn_numeral(n: int) -> str:
    """1..999 in Chinese numerals (八十八, 一百零五)."""
    digits = "零一二三四五六七八九"
    h, rest = divmod(n, 100)
    ten, one = divmod(rest, 10)
    out = digits[h] + "百" if h else ""
    if ten:
        out += ("" if ten == 1 and not h else digits[ten]) + "十"
    elif h and one:
        out += "零"
    if one:
        out += digits[one]
    return out or "零"


def load_districts() -> list[dict]:
    """The district units (config/districts.json)."""
    with (ROOT / "config" / "districts.json").open(encoding="utf-8") as fh:
        return json.load(fh)["districts"]


@dataclass
class Entity:
    """One real (fictional) enterprise."""

    eid: str
    trade: str
    category: str
    synset: list[str]
    legal: str
    district: dict
    uscc: str
    address: str
    headcount: int
    branch: str = ""
    neg: str = ""  # the hard-negative kind this entity was made as ("" for an original)


# Businesses that a coarse category would take for one (extended profile hard negatives).
NEIGHBOURS = {"服装": "纺织", "纺织": "服装", "印刷": "包装", "包装": "印刷"}
EXTENDED_ONLY = ("纺织", "包装")


class Generator:
    """Builds entities and their records from one seeded random source.

    extended=True adds the variation families of issue 14 (a character dropped inside the
    legal form, the industry word or the branch suffix, truncated industry words, a credit
    code registered in another district, more wrongly typed districts) and its hard
    negatives (neighbouring businesses, one name in one district under two legal forms,
    generic words 科技 / 实业 of one brand, same-sound brands in one district). Every record
    carries the families it shows in fields["families"]; every entity its hard-negative
    kind in fields["neg"].
    """

    def __init__(self, seed: int, extended: bool = False) -> None:
        self.extended = extended
        self.rnd = random.Random(seed)
        from pypinyin import Style, lazy_pinyin

        chars = list(dict.fromkeys(TRADE_CHARS + HOMOPHONE_EXTRA))
        self.pool = list(dict.fromkeys(TRADE_CHARS))
        self.weights = [1.0 / (r + 20) ** 0.9 for r in range(len(self.pool))]
        self.by_sound: dict[str, list[str]] = {}
        self.sound: dict[str, str] = {}
        for ch in chars:
            py = lazy_pinyin(ch, style=Style.NORMAL)[0]
            self.sound[ch] = py
            self.by_sound.setdefault(py, []).append(ch)
        self.districts = load_districts()
        # Central districts hold more enterprises than outlying counties.
        self.d_weights = [
            3.0 if d["kind"] in ("district", "office") else 1.0 for d in self.districts
        ]
        self.categories = [c for c in INDUSTRIES if extended or c not in EXTENDED_ONLY]
        self.used: set[tuple[str, str, str]] = set()
        self.n_entities = 0
        import opencc

        self.s2t = opencc.OpenCC("s2t")

    # --- entities -------------------------------------------------------------------------
    def trade_name(self) -> str:
        """A trade name of 2–4 characters drawn with popularity weights."""
        r = self.rnd.random()
        n = 2 if r < 0.55 else 3 if r < 0.88 else 4
        return "".join(self.rnd.choices(self.pool, self.weights, k=n))

    def uscc(self, district: dict) -> str:
        """A valid code: 91 (enterprise) + region 5101xx + organisation code + check."""
        body = "91" + district["code"] + "".join(self.rnd.choices(USCC_CHARSET, k=9))
        return body + uscc_check_char(body)

    def _code_district(self, d: dict) -> dict:
        """Where the code was issued: the district itself, or (extended profile, one firm in
        five) another district the firm has since left."""
        if self.extended and self.rnd.random() < 0.2:
            return self.rnd.choice(self.districts)
        return d

    def address(self) -> str:
        """A street address."""
        road = "".join(self.rnd.sample(ROAD_A, 2)) + self.rnd.choice(
            ["路", "街", "大道", "巷", "南路", "北路"]
        )
        return f"{road}{self.rnd.randint(1, 999)}号"

    def new_entity(
        self,
        trade: str | None = None,
        category: str | None = None,
        district: dict | None = None,
        **kw: object,
    ) -> Entity:
        """A new distinct enterprise; (trade, industry, district) is unique, as registration
        requires."""
        rnd = self.rnd
        for _ in range(50):
            t = trade or self.trade_name()
            c = category or rnd.choice(self.categories)
            d = district or rnd.choices(self.districts, self.d_weights)[0]
            synset = rnd.choice(INDUSTRIES[c])
            key = (t, c, d["code"])
            if key not in self.used:
                break
            trade = category = district = None
        self.used.add(key)
        legal = rnd.choices([x for x, _ in LEGAL], [w for _, w in LEGAL])[0]
        self.n_entities += 1
        e = Entity(
            eid=f"E{self.n_entities:07d}",
            trade=t,
            category=c,
            synset=synset,
            legal=legal,
            district=d,
            uscc=self.uscc(self._code_district(d)) if rnd.random() < 0.7 else "",
            address=self.address(),
            headcount=int(rnd.lognormvariate(3.5, 1.1)) + 3,
        )
        for k, v in kw.items():
            setattr(e, k, v)
        return e

    def homophone(self, trade: str) -> str | None:
        """The trade name with one character swapped for another of the same toneless pinyin."""
        idx = list(range(len(trade)))
        self.rnd.shuffle(idx)
        for i in idx:
            alts = [c for c in self.by_sound.get(self.sound.get(trade[i], ""), []) if c != trade[i]]
            if alts:
                return trade[:i] + self.rnd.choice(alts) + trade[i + 1 :]
        return None

    def hard_negatives(self, e: Entity) -> list[Entity]:
        """Distinct enterprises that look like e."""
        rnd = self.rnd
        out: list[Entity] = []
        r = rnd.random()
        if r < 0.04 and e.legal != "商行":
            # Branches: their own records, codes and addresses; never the parent.
            n = rnd.choice([1, 1, 2, 3])
            labels = rnd.sample(range(1, 6), n)
            for lab in labels:
                if rnd.random() < 0.5:
                    label = "第" + (CN_NUM[lab - 1] if rnd.random() < 0.7 else str(lab))
                    d = e.district
                else:
                    d = rnd.choice(self.districts)
                    label = d["short"]
                out.append(
                    self.new_entity(
                        e.trade, e.category, d, branch=label, legal=e.legal, synset=e.synset
                    )
                )
        elif r < 0.07:
            # One brand, another business (华兴机械 / 华兴食品), often the same district and
            # address.
            other = rnd.choice([c for c in self.categories if c not in (e.category, "*")])
            sib = self.new_entity(e.trade, other, e.district if rnd.random() < 0.6 else None)
            if rnd.random() < 0.3:
                sib.address = e.address
            out.append(sib)
        elif r < 0.09:
            # A same-sound look-alike in the same business (华兴机械 / 华星机械).
            t = self.homophone(e.trade)
            if t:
                out.append(self.new_entity(t, e.category))
        elif r < 0.10:
            # The same name registered in another district.
            d = rnd.choice([d for d in self.districts if d["code"] != e.district["code"]])
            out.append(self.new_entity(e.trade, e.category, d, synset=e.synset))
        elif self.extended and r < 0.16:
            out.extend(self.extended_negatives(e))
        for x in out:
            x.neg = x.neg or "classic"
        return out

    def extended_negatives(self, e: Entity) -> list[Entity]:
        """Hard negatives of the extended profile."""
        rnd = self.rnd
        r = rnd.random()
        if r < 0.25:
            other = NEIGHBOURS.get(e.category) or rnd.choice(list(NEIGHBOURS))
            sib = self.new_entity(e.trade, other, e.district, neg="neighbour_business")
            return [sib]
        if r < 0.5:
            # One name in one district under another legal form (a 厂 and a 有限公司), two
            # firms with their own addresses.
            legal = rnd.choice([x for x, _ in LEGAL if x != e.legal])
            sib = self.new_entity(e.trade, e.category, e.district, neg="same_name_district")
            sib.legal, sib.synset = legal, e.synset
            self.used.discard((e.trade, e.category, e.district["code"]))
            return [sib]
        if r < 0.7:
            # 华兴科技 / 华兴实业: one brand, two generic words, two firms.
            sets = INDUSTRIES["*"]
            syn = [s for s in sets if s is not e.synset]
            sib = self.new_entity(e.trade, "*", e.district, neg="generic_words")
            sib.synset = rnd.choice(syn)
            if e.category != "*":
                e2 = self.new_entity(e.trade, "*", e.district, neg="generic_words")
                e2.synset = [s for s in sets if s is not sib.synset][0]
                return [sib, e2]
            return [sib]
        t = self.homophone(e.trade)
        if t:
            return [self.new_entity(t, e.category, e.district, neg="homophone_district")]
        return []

    # --- records --------------------------------------------------------------------------
    def _drop_one(self, word: str) -> str:
        """word with one character left out (有限公司 → 有限司)."""
        i = self.rnd.randrange(len(word))
        return word[:i] + word[i + 1 :]

    def _address_format(self, address: str) -> str:
        """The same address written another way (extended profile)."""
        rnd = self.rnd
        r = rnd.random()
        m = re.search(r"(\d+)号", address)
        if r < 0.3 and m:
            # house number in Chinese numerals (八十八号)
            return address[: m.start()] + _cn_numeral(int(m.group(1))) + "号" + address[m.end() :]
        if r < 0.5:
            return address + rnd.choice(["附1号", "附近", "旁", "对面", "（临街）"])
        if r < 0.7 and m:
            # 88-1号, 88号1栋
            return (
                address[: m.end() - 1]
                + rnd.choice(["-1号", "号1栋", "号附2号"])
                + address[m.end() :]
            )
        if r < 0.85:
            return address + rnd.choice(["华兴大厦", "创业园", "科技园B座", "商务中心"])
        return address.replace("路", "").replace("街", "")

    def render(self, e: Entity, first: bool) -> dict:
        """One record of e as a cadre might have typed it."""
        rnd = self.rnd
        fam: list[str] = []
        trade = e.trade
        if not first:
            r = rnd.random()
            if r < 0.08:
                trade = self.homophone(trade) or trade
                fam.append("homophone")
            elif r < 0.11 and len(trade) >= 3:
                i = rnd.randrange(len(trade))
                trade = trade[:i] + trade[i + 1 :]
                fam.append("drop_trade")
            elif r < 0.13:
                i = rnd.randrange(len(trade))
                trade = trade[: i + 1] + trade[i] + trade[i + 1 :]
                fam.append("doubled")
        ind = e.synset[0] if first or rnd.random() < 0.8 else rnd.choice(e.synset)
        if not first and rnd.random() < 0.04:
            ind = ""
            fam.append("no_industry")
        legal = e.legal
        if not first and legal in LEGAL_SYNONYMS and rnd.random() < 0.3:
            legal = rnd.choice(LEGAL_SYNONYMS[legal])
        elif not first and rnd.random() < 0.04:
            legal = ""
            fam.append("no_legal")
        if self.extended and not first:
            if len(legal) >= 4 and rnd.random() < 0.05:
                legal = self._drop_one(legal)
                fam.append("drop_legal")
            r = rnd.random()
            if len(ind) >= 3 and r < 0.05:
                ind = self._drop_one(ind)
                fam.append("drop_industry")
            elif len(ind) >= 4 and r < 0.08:
                ind = ind[:2]
                fam.append("truncated_industry")
        d = e.district
        region = rnd.choices(
            ["", "成都", "成都市", "四川省成都市", "四川", d["name"], "成都市" + d["name"]],
            [30, 25, 20, 5, 3, 4, 3],
        )[0]
        bracket = rnd.random() < 0.08
        if bracket and not first:
            fam.append("bracket")
        if bracket:
            name = trade + rnd.choice(["（成都）", "(成都)", "【成都】"]) + ind + legal
        else:
            name = region + trade + ind + legal
        if e.branch:
            b = e.branch
            if b.startswith("第") and not first and rnd.random() < 0.3:
                # 第二 ↔ 第2: both are written.
                tail = b[1:]
                b = "第" + (
                    str(CN_NUM.index(tail) + 1) if tail in CN_NUM else CN_NUM[int(tail) - 1]
                )
            suffix = "分公司"
            if self.extended and not first and rnd.random() < 0.15:
                suffix = self._drop_one(suffix) if rnd.random() < 0.5 else "分司"
                fam.append("drop_branch")
            name += b + suffix
        if not first:
            if rnd.random() < 0.04:
                i = rnd.randrange(1, len(name))
                name = name[:i] + rnd.choice([" ", "  ", "\u3000"]) + name[i:]
            if rnd.random() < 0.05:
                name = name.translate(FULL_WIDTH)
            if rnd.random() < 0.08:
                name = self.s2t.convert(name)
                fam.append("traditional")

        uscc = ""
        if e.uscc and rnd.random() < 0.55:
            uscc = e.uscc
            if rnd.random() < 0.04:
                # A typo in one position: the check character then fails.
                i = rnd.randrange(2, 17)
                uscc = (
                    uscc[:i] + rnd.choice([c for c in USCC_CHARSET if c != uscc[i]]) + uscc[i + 1 :]
                )
            if rnd.random() < 0.1:
                uscc = uscc.lower()
            if e.uscc[2:8] != e.district["code"]:
                fam.append("code_region")
        r = rnd.random()
        wrong = 0.05 if self.extended else 0.02
        if r < 0.10:
            district = ""
        elif r < 0.10 + wrong:
            district = rnd.choice(self.districts)["name"]
            if district != d["name"]:
                fam.append("wrong_district")
        else:
            district = rnd.choices([d["name"], d["short"], "成都市" + d["name"]], [80, 12, 8])[0]
        address = ""
        if rnd.random() < 0.5:
            address = e.address
            r = rnd.random()
            if r < 0.3:
                address = "四川省成都市" + d["name"] + address
            elif r < 0.5:
                address = d["name"] + address
            if rnd.random() < 0.1:
                address += f"{rnd.randint(1, 30)}楼"
            if self.extended and not first and rnd.random() < 0.25:
                address = self._address_format(address)
                fam.append("address_format")
        headcount = ""
        if rnd.random() < 0.3:
            headcount = str(max(1, int(e.headcount * rnd.uniform(0.9, 1.1))))
        return {
            "name": name,
            "district": district,
            "uscc": uscc,
            "address": address,
            "headcount": headcount,
            "families": fam,
            "neg": e.neg,
        }

    def records_per_entity(self) -> int:
        """How many records one enterprise gets (visited, listed and synced several times)."""
        r = self.rnd.random()
        if r < 0.50:
            return 1
        if r < 0.75:
            return 2
        if r < 0.87:
            return 3
        if r < 0.93:
            return 4
        if r < 0.97:
            return 5
        return self.rnd.randint(6, 10)


def generate(n: int, seed: int = 1, extended: bool = False) -> list[tuple[str, str, dict]]:
    """n records as (record_id, true_id, fields), shuffled."""
    g = Generator(seed, extended)
    out: list[tuple[str, dict]] = []
    queue: list[Entity] = []
    while len(out) < n:
        if not queue:
            e = g.new_entity()
            queue = [e, *g.hard_negatives(e)]
        e = queue.pop(0)
        for k in range(g.records_per_entity()):
            out.append((e.eid, g.render(e, first=(k == 0))))
    out = out[:n]
    g.rnd.shuffle(out)
    return [(f"R{i + 1:07d}", eid, fields) for i, (eid, fields) in enumerate(out)]


def main(argv: list[str] | None = None) -> int:
    """Write the records CSV and the truth CSV."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("n", type=int)
    ap.add_argument("-o", "--output", required=True)
    ap.add_argument("--truth", required=True)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--encoding", default="utf-8", help="utf-8, utf-8-sig or gb18030")
    ap.add_argument("--extended", action="store_true", help="the variation families of issue 14")
    args = ap.parse_args(argv)
    rows = generate(args.n, args.seed, args.extended)
    with open(args.output, "w", encoding=args.encoding, newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["record_id", "name", "district", "uscc", "address", "headcount"])
        for rid, _, f in rows:
            w.writerow([rid, f["name"], f["district"], f["uscc"], f["address"], f["headcount"]])
    with open(args.truth, "w", encoding="utf-8", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["record_id", "true_id"])
        for rid, eid, _ in rows:
            w.writerow([rid, eid])
    print(f"{len(rows)} records, {len({e for _, e, _ in rows})} enterprises", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
