/* genemi gallery: the score filter, the run-wide pass count, jumping to a page and searching the whole run.
   Plain JS, no network. Pages are opened as file:// URLs, where fetch/XHR of local files is blocked, so the
   run's data files (data/search-0001.js, data/scores-0001.js, ...) are loaded on demand as <script> tags that
   call window.galleryShard(kind, number, rows). Every text from the data is set with textContent. */
(function () {
  "use strict";
  var body = document.body, q = new URLSearchParams(location.search);
  var page = Number(body.dataset.page), pages = Number(body.dataset.pages), scored = body.dataset.scored === "1";
  function $(id) { return document.getElementById(id); }
  var inItm = $("min-itm"), inIva = $("min-iva"), inHide = $("hide"), count = $("count");

  // --- the run's data files, loaded on demand -----------------------------------------------------------
  var shards = {}, waiting = {};
  window.galleryShard = function (kind, k, rows) { (shards[kind] = shards[kind] || {})[k] = rows; };
  function pad4(n) { var s = String(n); while (s.length < 4) s = "0" + s; return s; }
  function loaded(kind, n) {
    var have = shards[kind] || {}, rows = [];
    for (var k = 1; k <= n; k++) {
      if (!have[k]) return null;
      rows = rows.concat(have[k]);
    }
    return rows;
  }
  /* calls done(rows of every shard of kind), or done(null) when one cannot be loaded */
  function loadAll(kind, n, done) {
    var rows = loaded(kind, n);
    if (rows) return done(rows);
    if (waiting[kind]) return waiting[kind].push(done);
    var callbacks = waiting[kind] = [done], left = n;
    function one() {
      if (--left > 0) return;
      waiting[kind] = null;
      var all = loaded(kind, n);
      callbacks.forEach(function (cb) { cb(all); });
    }
    for (var k = 1; k <= n; k++) {
      if ((shards[kind] || {})[k]) { one(); continue; }
      var s = document.createElement("script");
      s.src = "data/" + kind + "-" + pad4(k) + ".js";
      s.onload = s.onerror = one;
      document.head.appendChild(s);
    }
  }

  // --- links between pages --------------------------------------------------------------------------------
  function pageName(p) { return p === 1 ? "index.html" : "page-" + pad4(p) + ".html"; }
  function filterQuery() {
    if (!scored) return "";
    var params = new URLSearchParams();
    if (inItm.value !== "") params.set("min_itm", inItm.value);
    if (inIva.value !== "") params.set("min_iva", inIva.value);
    if (inHide.checked) params.set("hide", "1");
    var s = params.toString();
    return s ? "?" + s : "";
  }
  function anchor(id) { return "#" + encodeURIComponent(id).replace(/%2F/g, "/"); }
  function clampPage(n) { n = Math.round(n); return n >= 1 ? Math.min(n, pages) : 1; }
  function jump(n, replace) {
    n = clampPage(n);
    if (n === page) return;
    var url = pageName(n) + filterQuery();
    if (replace) location.replace(url); else location.href = url;
  }

  // --- the score filter -----------------------------------------------------------------------------------
  if (q.has("min_itm")) inItm.value = q.get("min_itm");
  if (q.has("min_iva")) inIva.value = q.get("min_iva");
  if (q.get("hide") === "1") inHide.checked = true;
  function thr(input) { var x = parseFloat(input.value); return isNaN(x) ? null : x; }
  function val(v) { return v === undefined || v === null ? null : Number(v); }
  /* as genemi.score_filters.passes: strictly greater, and a non-finite score fails every threshold; a missing
     score (null) fails nothing here */
  function fails(x, t) { return t !== null && x !== null && !(isFinite(x) && x > t); }
  /* the run-wide count: precomputed for the export filters, else counted from data/scores-*.js */
  function runCount(mi, mv, done) {
    if (mi === Number(body.dataset.minItm) && mv === Number(body.dataset.minIva)) {
      return done(Number(body.dataset.runPass), Number(body.dataset.runScored));
    }
    loadAll("scores", Number(body.dataset.scoreShards), function (rows) {
      if (!rows) return done(null, 0);
      var pass = 0;
      for (var k = 0; k < rows.length; k++) if (!fails(rows[k][0], mi) && !fails(rows[k][1], mv)) pass++;
      done(pass, rows.length);
    });
  }
  var generation = 0;
  function apply() {
    if (!scored) return;  // nothing to filter on
    var mi = thr(inItm), mv = thr(inIva), hide = inHide.checked;
    var pass = 0, painted = 0, failed = 0, unscored = 0, shown = 0;
    var cards = document.querySelectorAll(".var");
    for (var i = 0; i < cards.length; i++) {
      var c = cards[i], ok;
      if (c.classList.contains("failed")) { failed++; ok = false; }
      else if (c.dataset.itm === undefined && c.dataset.iva === undefined) { unscored++; ok = true; }
      else {
        painted++;
        var fItm = fails(val(c.dataset.itm), mi), fIva = fails(val(c.dataset.iva), mv);
        c.querySelector(".b-itm").hidden = !fItm;
        c.querySelector(".b-iva").hidden = !fIva;
        c.classList.toggle("filtered", fItm || fIva);
        ok = !(fItm || fIva);
        if (ok) pass++;
      }
      c.hidden = hide && !ok;
      if (!c.hidden) shown++;
    }
    var text = "this page: " + pass + " of " + painted + " scored variations pass" +
      (failed ? " (" + failed + " failed)" : "") + (unscored ? " (" + unscored + " not scored)" : "") +
      "; " + shown + " cards shown";
    var mine = ++generation;
    count.textContent = text + " · run: counting…";
    runCount(mi, mv, function (runPass, total) {
      if (mine !== generation) return;  // the thresholds changed meanwhile
      count.textContent = text + (runPass === null ? " · run: count unavailable (data/scores-*.js missing)"
                                                   : " · run: " + runPass + " of " + total + " pass");
    });
    var query = filterQuery(), links = document.querySelectorAll("a[data-page]");
    for (var j = 0; j < links.length; j++) links[j].href = links[j].dataset.page + query;
  }
  $("reset").addEventListener("click", function () {
    inItm.value = body.dataset.minItm; inIva.value = body.dataset.minIva; inHide.checked = false; apply();
  });
  [inItm, inIva, inHide].forEach(function (el) {
    el.addEventListener("input", apply);
    el.addEventListener("change", apply);
  });

  // --- jump to a page: the box, or #page=N in the URL ----------------------------------------------------
  $("jump").addEventListener("submit", function (ev) {
    ev.preventDefault();
    jump(Number($("page-input").value), false);
  });
  function jumpFromHash() {
    var m = /^#page=(\d+)$/.exec(location.hash);
    if (m) jump(Number(m[1]), true);
  }
  window.addEventListener("hashchange", jumpFromHash);

  // --- search the whole run: image id, item id and label, caption, short labels, variation captions ------
  var MAX_SHOWN = 200, results = $("results"), input = $("q"), prepared = null;
  function lower(parts) { return parts.join("\n").toLowerCase(); }
  /* data/search-*.js rows: [page, item id, image id, item label, image caption, [[variation id, short label,
     caption, ...], ...]]; a variation id starting with "/" is relative to its item's id */
  function prepare(rows) {
    return rows.map(function (r) {
      return {page: r[0], id: r[1], label: r[3], caption: r[4], text: lower([r[1], r[2], r[3], r[4]]),
        vars: r[5].map(function (v) {
          var id = v[0].charAt(0) === "/" ? r[1] + v[0] : v[0];
          return {id: id, short: v[1], caps: v.slice(2), text: lower([id].concat(v.slice(1)))};
        })};
    });
  }
  function matches(text, terms) {
    for (var t = 0; t < terms.length; t++) if (text.indexOf(terms[t]) < 0) return false;
    return true;
  }
  function find(terms) {
    var hits = [];
    prepared.forEach(function (it) {
      if (matches(it.text, terms)) {
        hits.push({page: it.page, id: it.id, where: it.label + (it.caption ? " · “" + it.caption + "”" : "")});
        return;
      }
      it.vars.forEach(function (v) {
        if (matches(it.text + "\n" + v.text, terms)) hits.push({page: it.page, id: v.id, where: v.short + " · " + v.caps.join(" | ")});
      });
    });
    return hits;
  }
  function el(tag, cls, text) {
    var e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text !== undefined) e.textContent = text;
    return e;
  }
  function show(head, hits) {
    results.textContent = "";
    results.appendChild(el("b", "", head));
    var close = el("button", "", "close");
    close.type = "button";
    close.addEventListener("click", function () { results.hidden = true; });
    results.appendChild(document.createTextNode(" "));
    results.appendChild(close);
    if (hits && hits.length) {
      var list = el("ol");
      hits.slice(0, MAX_SHOWN).forEach(function (h) {
        var li = el("li"), a = el("a", "hit", h.id);
        a.href = (h.page === page ? "" : pageName(h.page) + filterQuery()) + anchor(h.id);
        li.appendChild(a);
        li.appendChild(el("span", "where", " page " + h.page + " · " + h.where));
        list.appendChild(li);
      });
      results.appendChild(list);
    }
    results.hidden = false;
  }
  function search(query) {
    var terms = query.toLowerCase().split(/\s+/).filter(Boolean);
    if (!terms.length) { results.hidden = true; return; }
    show("searching…");
    loadAll("search", Number(body.dataset.searchShards), function (rows) {
      if (!rows) return show("the search index could not be loaded (data/search-*.js missing: rebuild the gallery)");
      if (!prepared) prepared = prepare(rows);
      var hits = find(terms), quoted = "“" + query.trim() + "”";
      show(hits.length ? hits.length + " match" + (hits.length === 1 ? "" : "es") + " for " + quoted +
           (hits.length > MAX_SHOWN ? " (the first " + MAX_SHOWN + " listed)" : "") : "no match for " + quoted, hits);
    });
  }
  $("search").addEventListener("submit", function (ev) {
    ev.preventDefault();
    search(input.value);
  });

  apply();
  jumpFromHash();
  if (q.get("q")) {
    input.value = q.get("q");
    search(input.value);
  }
})();
