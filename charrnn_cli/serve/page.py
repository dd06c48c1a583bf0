"""The page `GET /` serves: type a prompt, pick a model, temperature and length, and watch the
text stream in from the server's own `/v1/completions` (nothing else is loaded). Its requests
pass the server's access rules as any client's: same origin, `application/json`, and the API
key typed in when the server has one. Torch-free."""

PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>charrnn serve</title>
<style>
body{font:15px/1.45 system-ui,sans-serif;max-width:52rem;margin:2rem auto;padding:0 1rem;color:#222}
textarea,pre{width:100%;box-sizing:border-box;font:14px/1.4 ui-monospace,monospace}
pre{white-space:pre-wrap;background:#f6f6f4;border:1px solid #ddd;padding:.8rem;min-height:12rem}
label{margin-right:1rem}input[type=number]{width:6rem}.muted{color:#777}
</style></head><body>
<h1>charrnn serve</h1>
<p class="muted">A character model answering OpenAI's <code>/v1/completions</code>.</p>
<textarea id="prompt" rows="3">ROMEO:</textarea>
<p><label>model <select id="model"></select></label>
<label>temperature
  <input id="temperature" type="number" value="0.8" min="0" max="2" step="0.1"></label>
<label>characters <input id="length" type="number" value="500" min="1" max="100000"></label>
<label>seed <input id="seed" type="number" min="0" placeholder="random"></label>
<label>API key <input id="key" type="password" size="10" placeholder="if it has one"></label>
<button id="go">Generate</button> <button id="halt" disabled>Stop</button></p>
<pre id="out"></pre><p id="status" class="muted"></p>
<script>
const $ = id => document.getElementById(id);
let reader = null;
const auth = () => $("key").value ? {Authorization: "Bearer " + $("key").value} : {};
function models() {
  fetch("/v1/models", {headers: auth()}).then(r => r.json()).then(j => {
    if (j.error) { $("status").textContent = j.error.message; return; }
    $("model").replaceChildren(); $("status").textContent = "";
    for (const m of j.data) {
      const o = document.createElement("option"); o.textContent = m.id; $("model").append(o);
    }
  });
}
models();
$("key").onchange = models;
async function go() {
  const body = {model: $("model").value || undefined, prompt: $("prompt").value, stream: true,
    echo: true, max_tokens: +$("length").value, temperature: +$("temperature").value};
  if ($("seed").value !== "") body.seed = +$("seed").value;
  $("out").textContent = ""; $("status").textContent = "";
  $("go").disabled = true; $("halt").disabled = false;
  const t0 = performance.now(); let n = 0;
  try {
    const r = await fetch("/v1/completions", {method: "POST", body: JSON.stringify(body),
      headers: {"Content-Type": "application/json", ...auth()}});
    if (!r.ok) { $("status").textContent = (await r.json()).error.message; return; }
    reader = r.body.getReader(); const dec = new TextDecoder(); let buf = "";
    for (;;) {
      const {value, done} = await reader.read(); if (done) break;
      buf += dec.decode(value, {stream: true});
      let at;
      while ((at = buf.indexOf("\\n\\n")) >= 0) {
        const line = buf.slice(0, at); buf = buf.slice(at + 2);
        if (!line.startsWith("data: ") || line === "data: [DONE]") continue;
        const ev = JSON.parse(line.slice(6));
        if (ev.error) { $("status").textContent = ev.error.message; continue; }
        for (const c of ev.choices) { $("out").textContent += c.text; n += c.text.length; }
      }
      const rate = n / ((performance.now() - t0) / 1000);
      $("status").textContent = `${n} characters, ${rate.toFixed(0)}/s`;
    }
  } catch (e) { $("status").textContent = String(e); }
  finally { reader = null; $("go").disabled = false; $("halt").disabled = true; }
}
$("go").onclick = go;
$("halt").onclick = () => reader && reader.cancel();
</script></body></html>
"""
