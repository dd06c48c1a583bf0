"""The `charrnn viz` pages: one self-contained HTML file each (inline CSS and script, nothing
fetched, opens from disk), torch-free.

Every character of the text is its own element, coloured by a CSS class chosen here, so the page
shows the picture even without its script and the text is in the page in order. The script only
adds what needs a reader: the box with a character's bits and the model's top guesses (on hover
or tap), and switching between units on the cells page (its buttons, or `#unit=N` in the
address), which recolours the characters from compact per-unit strings (one letter a
character) without reloading. Tens of thousands of characters stay responsive: one listener
on the text, class changes only. When its script has run, the page marks
<body data-ready="1">.
"""

from __future__ import annotations

import html
import math
from dataclasses import dataclass

from charrnn_cli.console import json_text, visible

BITS_STEP, BITS_LEVELS = 0.5, 17  # surprise classes s0..s16: 0-0.5 bits ... 8 bits and more
ACT_LEVELS = 41  # cells classes a0..a40: activation -1 .. +1 in steps of 0.05
LETTERS = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"  # level k -> LETTERS[k]
UNKNOWN = "."  # no value at this character


@dataclass(frozen=True)
class UnitView:
    label: str  # e.g. "layer 2 unit 37 · line-position r=+0.63"
    values: list[float | None]  # activation after each character of the text


def bits_level(bits: float | None) -> int | None:
    if bits is None or not math.isfinite(bits):
        return None
    return min(BITS_LEVELS - 1, max(0, int(bits / BITS_STEP)))


def act_level(value: float | None) -> int | None:
    if value is None or not math.isfinite(value):
        return None
    return round((max(-1.0, min(1.0, value)) + 1.0) / 2.0 * (ACT_LEVELS - 1))


def _mix(a: tuple[int, int, int], b: tuple[int, int, int], f: float) -> str:
    r, g, bl = (round(x + (y - x) * f) for x, y in zip(a, b, strict=True))
    return f"#{r:02x}{g:02x}{bl:02x}"


def bits_colour(level: int) -> str:
    """White (sure) through yellow and orange to red (surprised)."""
    stops = [(255, 255, 255), (255, 236, 140), (255, 160, 60), (220, 40, 40)]
    f = level / (BITS_LEVELS - 1) * (len(stops) - 1)
    i = min(int(f), len(stops) - 2)
    return _mix(stops[i], stops[i + 1], f - i)


def act_colour(level: int) -> str:
    """-1 blue, 0 white, +1 red."""
    v = level / (ACT_LEVELS - 1) * 2 - 1
    return _mix((255, 255, 255), (70, 110, 230) if v < 0 else (225, 60, 50), abs(v))


CSS = """
body{font:14px/1.45 system-ui,sans-serif;margin:0;color:#222;background:#fafafa}
header{position:sticky;top:0;background:#fff;border-bottom:1px solid #ddd;padding:8px 16px;
  z-index:2}
h1{font-size:15px;margin:0 0 4px}.note{color:#666;font-size:12px}
.legend{display:flex;align-items:center;gap:0;margin:6px 0 2px;font-size:11px;color:#444}
.legend i{display:inline-block;min-width:22px;text-align:center;font-style:normal;
  padding:1px 0;border:1px solid #eee}
.legend span{margin:0 8px}
#units{display:flex;flex-wrap:wrap;gap:4px;margin-top:6px}
#units button{font:12px system-ui,sans-serif;border:1px solid #bbb;background:#f4f4f4;
  border-radius:4px;padding:2px 6px;cursor:pointer}
#units button.on{background:#333;color:#fff;border-color:#333}
#t{font:13px/1.5 ui-monospace,Menlo,Consolas,monospace;white-space:pre-wrap;
  word-break:break-all;padding:12px 16px;margin:0;contain:content}
#t i{font-style:normal;cursor:default}
#t i.nl::before{content:"\\21B5";color:#999}#t i.cr::before{content:"\\240D";color:#999}
#t i.u,#t i.cc{color:#999}#t i.x{color:#b00;text-decoration:underline dotted}
#t i.hl{outline:1px solid #000}
#tip{position:fixed;display:none;background:#fff;border:1px solid #888;border-radius:4px;
  padding:6px 8px;font:12px/1.4 ui-monospace,monospace;box-shadow:0 2px 8px #0003;z-index:3;
  pointer-events:none;white-space:pre}
"""

SCRIPT = """
(function(){
var D=JSON.parse(document.getElementById("data").textContent);
var t=document.getElementById("t"),tip=document.getElementById("tip");
var el=t.children,chars=[],cur=null,unit=0;
for(var k=0;k<el.length;k++){el[k]._i=k;chars.push(el[k].textContent);}
var SHOWN={"\\n":"\\u21b5","\\r":"\\u240d"," ":"\\u2423","\\t":"\\u21e5"};
function vis(c){return SHOWN[c]||c;}
function line(a,b){var d=document.createElement("div");d.textContent=a+(b===undefined?"":b);
  tip.appendChild(d);}
function surprise(i){
  if(D.bits[i]===null){line(D.why);return;}
  line(D.bits[i].toFixed(2)+" bits");line("top guesses here:");
  for(var j=0;j<D.k;j++){var c=D.topc[i*D.k+j];
    line((c===chars[i]?"> ":"  ")+vis(c).padEnd(3),(D.topp[i*D.k+j]/10).toFixed(1)+"%");}
}
function cells(i){
  var u=D.units[unit],c=u.levels.charAt(i),lv=D.letters.indexOf(c);
  line(u.label);
  line(lv<0?"no value here":"activation ~ "+(lv/(D.levels-1)*2-1).toFixed(2));
}
function show(e){
  var s=e.target;if(s._i===undefined)return;
  if(cur)cur.classList.remove("hl");cur=s;s.classList.add("hl");
  tip.textContent="";line("#"+s._i+"  "+JSON.stringify(vis(chars[s._i])));
  (D.kind==="surprise"?surprise:cells)(s._i);
  var r=s.getBoundingClientRect();tip.style.display="block";
  var x=Math.min(r.left,window.innerWidth-tip.offsetWidth-8);
  var y=r.bottom+6+tip.offsetHeight>window.innerHeight?r.top-tip.offsetHeight-6:r.bottom+6;
  tip.style.left=Math.max(4,x)+"px";tip.style.top=Math.max(4,y)+"px";
}
t.addEventListener("mouseover",show);t.addEventListener("click",show);
t.addEventListener("mouseleave",function(){tip.style.display="none";
  if(cur)cur.classList.remove("hl");});
document.body.setAttribute("data-ready","1");
if(D.kind!=="cells")return;
var buttons=document.querySelectorAll("#units button");
function pick(n){
  unit=n;var lv=D.units[n].levels;
  for(var k=0;k<el.length;k++){var c=lv.charAt(k),q=D.letters.indexOf(c);
    el[k].className=(q<0?"u":"a"+q)+(chars[k]==="\\n"?" nl":chars[k]==="\\r"?" cr":"");}
  for(var b=0;b<buttons.length;b++)buttons[b].classList.toggle("on",b===n);
}
for(var b=0;b<buttons.length;b++)buttons[b].addEventListener("click",pick.bind(null,b));
var m=/unit=(\\d+)/.exec(location.hash);if(m&&+m[1]<buttons.length)pick(+m[1]);
})();
"""


def _json(value: object) -> str:
    """JSON safe inside a <script> element: no `</script>` or `<!--` (`<` is \\u003c), and no
    control, separator or lone surrogate raw (console.json_text)."""
    text = json_text(value, separators=(",", ":"))
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def _h(text: str) -> str:
    """Text for the page's markup: escaped, its control characters shown (console.visible)."""
    return html.escape(visible(text, keep=""))


def _spans(text: str, classes: list[str]) -> str:
    """One element a character. A carriage return is written as a reference (`&#13;`): a raw
    one is turned into a newline by the HTML parser, so CRLF text would show a blank line
    after every line; it is marked ␍ as a newline is marked ↵. Any other control character
    (or separator, bidirectional control) is shown as its picture (console.visible)."""
    parts = []
    for ch, cls in zip(text, classes, strict=True):
        if ch == "\r":
            parts.append(f'<i class="{cls} cr">&#13;</i>')
            continue
        if ch != "\n" and (shown := visible(ch)) != ch:  # ESC, NUL, C1...: a picture
            parts.append(f'<i class="{cls} cc">{shown}</i>')
            continue
        tag = f'<i class="{cls} nl">' if ch == "\n" else f"<i class={cls}>"
        parts.append(tag + html.escape(ch, quote=False) + "</i>")
    return "".join(parts)


def _page(title: str, head: str, body_text: str, data: dict, css: str) -> str:
    return (
        "<!doctype html>\n<html lang=en><head><meta charset=utf-8>"
        '<meta name=viewport content="width=device-width,initial-scale=1">'
        f"<title>{_h(title)}</title><style>{CSS}{css}</style></head><body>"
        f"<header>{head}</header><pre id=t>{body_text}</pre><div id=tip></div>"
        f"<script id=data type=application/json>{_json(data)}</script>"
        f"<script>{SCRIPT}</script></body></html>\n"
    )


def surprise_page(
    *,
    title: str,
    note: str,
    text: str,
    bits: list[float | None],
    top_chars: list[list[str]],
    top_p: list[list[float]],
    mean: float,
) -> str:
    """The text coloured by surprisal, with each character's bits and top guesses on hover."""
    levels = [bits_level(b) for b in bits]
    classes = ["u" if lv is None else f"s{lv}" for lv in levels]
    css = "".join(f"#t i.s{k},.legend i.s{k}{{background:{bits_colour(k)}}}"
                  for k in range(BITS_LEVELS))  # fmt: skip
    swatches = "".join(f"<i class=s{k}>{k * BITS_STEP:g}</i>" for k in range(0, BITS_LEVELS, 2))
    k = len(top_chars[0]) if top_chars else 0
    head = (
        f"<h1>{_h(title)}</h1><div class=note>{_h(note)}</div>"
        f"<div class=legend><span>bits (-log2 p):</span>{swatches}<span>and more</span>"
        f"<span><b>mean {mean:.4f} bits/char</b></span></div>"
    )
    data = {
        "kind": "surprise", "k": k,
        "bits": [None if lv is None else round(b, 3) for b, lv in zip(bits, levels, strict=True)],
        "topc": [c for row in top_chars for c in row],
        "topp": [round(p * 1000) for row in top_p for p in row],
        "why": "not scored: a stream of the text starts here, or the run does not know it",
    }  # fmt: skip
    return _page(title, head, _spans(text, classes), data, css)


def unit_letters(values: list[float | None]) -> str:
    out = []
    for v in values:
        lv = act_level(v)
        out.append(UNKNOWN if lv is None else LETTERS[lv])
    return "".join(out)


def cells_page(*, title: str, note: str, text: str, units: list[UnitView]) -> str:
    """The text coloured by one unit's activation; buttons switch between the units."""
    if not units:
        raise ValueError("cells_page needs at least one unit")
    letters = [unit_letters(u.values) for u in units]
    first = ["u" if c == UNKNOWN else f"a{LETTERS.index(c)}" for c in letters[0]]
    css = "".join(f"#t i.a{k},.legend i.a{k}{{background:{act_colour(k)}}}"
                  for k in range(ACT_LEVELS))  # fmt: skip
    swatches = "".join(f"<i class=a{k}>{k / 20 - 1:+g}</i>" for k in range(0, ACT_LEVELS, 5))
    buttons = "".join(
        f"<button{' class=on' if j == 0 else ''}>{_h(u.label)}</button>"
        for j, u in enumerate(units)
    )
    head = (
        f"<h1>{_h(title)}</h1><div class=note>{_h(note)}</div>"
        f"<div class=legend><span>activation:</span>{swatches}</div><div id=units>{buttons}</div>"
    )
    data = {
        "kind": "cells", "letters": LETTERS[:ACT_LEVELS], "levels": ACT_LEVELS,
        "units": [{"label": u.label, "levels": lv} for u, lv in zip(units, letters, strict=True)],
    }  # fmt: skip
    return _page(title, head, _spans(text, first), data, css)
