/* charrnn's sampler in plain JavaScript: the model of an exported page, stepped one character at
 * a time with the state carried, greedy (temperature 0: the likeliest character, the text of
 * `charrnn sample --greedy`) or drawn at a temperature with an optional top-k. No library, no
 * network. The same file runs in a browser (window.CharRNN) and under node:
 *
 *   node sampler.js PAGE.html --seed "ROMEO:" --len 300 [--temperature T] [--top-k K]
 *        [--random-seed S] [--no-echo-seed] [--bench]
 *   node sampler.js PAGE.html --predict TEXT
 *
 * prints the seed and its continuation on stdout, as `charrnn sample` and the page show them
 * (the continuation alone with --no-echo-seed); --bench prints chars/s on stderr;
 * --predict prints the likeliest next character after each prefix of TEXT.
 * The weights are float32, as charrnn's own sampler holds them; the first layer's input
 * projection of every character (embedding x W_ih, biases folded in) is one table row. */
(function (root) {
  "use strict";

  function decode(base64) {
    var bytes;
    if (typeof atob === "function") {
      var text = atob(base64);
      bytes = new Uint8Array(text.length);
      for (var i = 0; i < text.length; i++) bytes[i] = text.charCodeAt(i);
    } else {
      bytes = new Uint8Array(Buffer.from(base64, "base64"));
    }
    return new Float32Array(bytes.buffer, bytes.byteOffset, bytes.byteLength / 4);
  }

  /* out[r] = bias[r] + W[r, :] . x for the rows of a (rows x cols) row-major matrix (plus
   * out[r] with `add`); four rows a pass, so each x[k] read serves all four. */
  function matvec(W, rows, cols, x, out, bias, add) {
    var r = 0;
    for (; r + 3 < rows; r += 4) {
      var o0 = r * cols, o1 = o0 + cols, o2 = o1 + cols, o3 = o2 + cols;
      var s0 = 0, s1 = 0, s2 = 0, s3 = 0;
      for (var k = 0; k < cols; k++) {
        var xk = x[k];
        s0 += W[o0 + k] * xk;
        s1 += W[o1 + k] * xk;
        s2 += W[o2 + k] * xk;
        s3 += W[o3 + k] * xk;
      }
      if (bias) { s0 += bias[r]; s1 += bias[r + 1]; s2 += bias[r + 2]; s3 += bias[r + 3]; }
      if (add) { s0 += out[r]; s1 += out[r + 1]; s2 += out[r + 2]; s3 += out[r + 3]; }
      out[r] = s0; out[r + 1] = s1; out[r + 2] = s2; out[r + 3] = s3;
    }
    for (; r < rows; r++) {
      var q = r * cols, s = 0;
      for (var m = 0; m < cols; m++) s += W[q + m] * x[m];
      if (bias) s += bias[r];
      out[r] = add ? out[r] + s : s;
    }
  }

  function sigmoid(x) { return 1 / (1 + Math.exp(-x)); }

  function Model(spec) {
    var all = decode(spec.weights), t = {};
    for (var name in spec.tensors) {
      var at = spec.tensors[name];
      t[name] = all.subarray(at[0], at[0] + at[1]);
    }
    this.cell = spec.cell; this.L = spec.layers; this.H = spec.hidden_size;
    this.vocab = spec.vocab; this.V = spec.vocab.length; this.unigram = spec.unigram;
    this.G = { lstm: 4, gru: 3, rnn: 1 }[spec.cell];
    this.t = t;
    this.layers = [];
    for (var l0 = 0; l0 < spec.layers; l0++) this.layers.push(this.layer(l0));
    this.index = {};
    for (var i = 0; i < this.V; i++) this.index[this.vocab[i]] = i;
    var GH = this.G * this.H;
    this.h = []; this.c = []; this.gi = []; this.gh = [];
    for (var l = 0; l < this.L; l++) {
      this.h.push(new Float32Array(this.H)); this.c.push(new Float32Array(this.H));
      this.gi.push(new Float32Array(GH)); this.gh.push(new Float32Array(GH));
    }
    this.logits = new Float32Array(this.V);
    this.reset();
  }

  /* One layer's weights as step reads them: for an LSTM or RNN layer above the first,
   * [W_ih | W_hh] side by side, so that one pass over [x, h] makes its gates. */
  Model.prototype.layer = function (l) {
    var t = this.t, H = this.H, GH = this.G * H, gru = this.cell === "gru";
    var out = { whh: t["whh" + l], bih: t["bih" + l], bhh: t["bhh" + l], wih: t["wih" + l] };
    if (l > 0 && !gru) {
      var w = new Float32Array(GH * 2 * H);
      for (var r = 0; r < GH; r++) {
        w.set(out.wih.subarray(r * H, r * H + H), r * 2 * H);
        w.set(out.whh.subarray(r * H, r * H + H), r * 2 * H + H);
      }
      out.stacked = w;
      out.xh = new Float32Array(2 * H);
    }
    return out;
  };

  /* Back to the start state: the learned one (parts x layers x 1 x hidden), or zeros. */
  Model.prototype.reset = function () {
    var s = this.t.start, H = this.H, L = this.L;
    for (var l = 0; l < L; l++) {
      for (var j = 0; j < H; j++) {
        this.h[l][j] = s ? s[l * H + j] : 0;
        this.c[l][j] = s && this.cell === "lstm" ? s[(L + l) * H + j] : 0;
      }
    }
  };

  /* Feed one character id; return the logits of the next (a buffer the next step reuses). */
  Model.prototype.step = function (id) {
    var H = this.H, GH = this.G * H, x = null, gru = this.cell === "gru";
    for (var l = 0; l < this.L; l++) {
      var w = this.layers[l], g = this.gi[l], h = this.h[l], j;
      if (l === 0) {
        var table = this.t.table, at = id * GH;
        for (j = 0; j < GH; j++) g[j] = table[at + j];
        if (!gru) matvec(w.whh, GH, H, h, g, null, true);
      } else if (gru) {
        matvec(w.wih, GH, H, x, g, w.bih, false);
      } else {
        w.xh.set(x, 0);
        w.xh.set(h, H);
        matvec(w.stacked, GH, 2 * H, w.xh, g, w.bih, false);
      }
      if (gru) {
        var gh = this.gh[l];
        matvec(w.whh, GH, H, h, gh, w.bhh, false);
        for (j = 0; j < H; j++) {
          var r = sigmoid(g[j] + gh[j]), z = sigmoid(g[H + j] + gh[H + j]);
          var n = Math.tanh(g[2 * H + j] + r * gh[2 * H + j]);
          h[j] = n + z * (h[j] - n);
        }
      } else if (this.cell === "rnn") {
        for (j = 0; j < H; j++) h[j] = Math.tanh(g[j]);
      } else {
        var c = this.c[l];
        for (j = 0; j < H; j++) {
          var ig = sigmoid(g[j]), fg = sigmoid(g[H + j]);
          var gg = Math.tanh(g[2 * H + j]), og = sigmoid(g[3 * H + j]);
          c[j] = fg * c[j] + ig * gg;
          h[j] = og * Math.tanh(c[j]);
        }
      }
      x = h;
    }
    matvec(this.t.wout, this.V, H, x, this.logits, this.t.bout, false);
    return this.logits;
  };

  /* A seeded generator of uniform numbers in [0, 1) (mulberry32). */
  function random(seed) {
    var a = seed >>> 0;
    return function () {
      a = (a + 0x6d2b79f5) >>> 0;
      var t = Math.imul(a ^ (a >>> 15), a | 1);
      t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
      return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
    };
  }

  function argmax(v) {
    var best = 0;
    for (var i = 1; i < v.length; i++) if (v[i] > v[best]) best = i;
    return best;
  }

  /* The next id: the likeliest at temperature 0, else drawn from softmax(logits / T) over the
   * top k. */
  function draw(logits, temperature, topK, rand, p) {
    if (!(temperature > 0)) return argmax(logits);
    var V = logits.length, cut = -Infinity, i;
    if (topK < V) {
      var sorted = Array.prototype.slice.call(logits).sort(function (a, b) { return b - a; });
      cut = sorted[topK - 1];
    }
    var max = logits[argmax(logits)], sum = 0;
    for (i = 0; i < V; i++) {
      p[i] = logits[i] >= cut ? Math.exp((logits[i] - max) / temperature) : 0;
      sum += p[i];
    }
    var u = rand() * sum;
    for (i = 0; i < V; i++) {
      u -= p[i];
      if (u < 0 && p[i] > 0) return i;
    }
    for (i = V - 1; i > 0 && p[i] === 0; i--);
    return i;
  }

  var hasOwn = Object.prototype.hasOwnProperty;

  /* Top-k as given (a form field or the address): a whole number from 1 to V keeps that many,
   * a fraction is rounded down; anything else (0, negative, not a number) keeps them all. */
  function topKOf(k, V) {
    k = Math.floor(+k);
    return k >= 1 && k < V ? k : V;
  }

  /* A generation: `next(n)` returns up to n more characters ("" when done). The seed's
   * characters the model never saw are skipped; without a seed the first character is drawn
   * from the training text's character counts. */
  Model.prototype.generate = function (seed, length, temperature, topK, randomSeed) {
    var self = this, rand = random(randomSeed == null ? (Math.random() * 4294967296) : randomSeed);
    var made = 0, logits = null, ids = [], p = new Float64Array(self.V), chars = Array.from(seed);
    topK = topKOf(topK, self.V);
    self.reset();
    for (var i = 0; i < chars.length; i++) {  /* code points: an emoji is one character */
      if (hasOwn.call(self.index, chars[i])) ids.push(self.index[chars[i]]);
    }
    var head = "";
    if (!ids.length) {
      var counts = self.unigram || [], total = 0, u;
      for (i = 0; i < self.V; i++) total += counts[i] || 1;
      u = rand() * total;
      for (i = 0; i < self.V - 1; i++) { u -= counts[i] || 1; if (u < 0) break; }
      ids.push(i); head = self.vocab[i]; made = 1;
    }
    for (i = 0; i < ids.length; i++) logits = self.step(ids[i]);
    return {
      next: function (n) {
        var out = head; head = "";
        while (made < length && out.length < n) {
          var id = draw(logits, temperature, topK, rand, p);
          out += self.vocab[id];
          made++;
          if (made < length) logits = self.step(id);
        }
        return out;
      }
    };
  };

  /* The likeliest next character after each prefix of `text` (all its characters known):
   * what the model predicts at every position, the state carried from the start state. */
  Model.prototype.predict = function (text) {
    var out = "", chars = Array.from(text);
    this.reset();
    for (var i = 0; i < chars.length; i++) out += this.vocab[argmax(this.step(this.index[chars[i]]))];
    return out;
  };

  var api = { Model: Model, decode: decode, random: random, topKOf: topKOf };
  if (typeof module !== "undefined" && module.exports) module.exports = api;
  else root.CharRNN = api;

  if (typeof require !== "undefined" && typeof module !== "undefined" && require.main === module) {
    var fs = require("fs"), args = process.argv.slice(2), opt = { len: "300", temperature: "0" };
    var page = fs.readFileSync(args.shift(), "utf8");
    for (var a = 0; a < args.length; a++) {
      if (args[a] === "--bench" || args[a] === "--no-echo-seed") opt[args[a].slice(2)] = true;
      else opt[args[a].replace(/^--/, "").replace(/-/g, "_")] = args[++a];
    }
    var found = /<script id="charrnn-model" type="application\/json">([\s\S]*?)<\/script>/.exec(page);
    var model = new Model(JSON.parse(found[1]));
    if (opt.predict != null) {
      process.stdout.write(model.predict(opt.predict));
      return;
    }
    var started = process.hrtime.bigint();
    var run = model.generate(opt.seed || "", +opt.len, +opt.temperature,
      opt.top_k ? +opt.top_k : 0, opt.random_seed == null ? null : +opt.random_seed);
    var text = "", piece;
    while ((piece = run.next(4096))) text += piece;
    var seconds = Number(process.hrtime.bigint() - started) / 1e9;
    process.stdout.write(opt["no-echo-seed"] ? text : (opt.seed || "") + text);
    if (opt.bench) process.stderr.write(JSON.stringify({ chars: text.length, seconds: seconds,
      chars_per_sec: text.length / seconds }) + "\n");
  }
})(this);
