// The school's own Shuxiang chat. No library and nothing from the internet: the server's
// /api routes, and the DOM built with createElement/textContent only. The bot's messages
// arrive as Telegram's HTML subset (already cleaned by the server, bot/web/html.py); they are
// cleaned again here with the same list before anything reaches the page.
"use strict";
(function () {
  var ALLOWED = { B: 1, STRONG: 1, I: 1, EM: 1, U: 1, INS: 1, S: 1, STRIKE: 1, DEL: 1, CODE: 1,
    PRE: 1, BLOCKQUOTE: 1, "TG-SPOILER": 1, A: 1 };
  var $ = function (id) { return document.getElementById(id); };
  var S = {};          // the page's strings (services/locales/zh-CN/web.toml)
  var csrf = "";       // the session's token; before sign-in, the form's
  var pre = "";
  var seq = 0;
  var polling = 0;     // the current poll's generation: a sign-out stops the old loop
  var nodes = {};      // message id -> element

  function safeHref(href) {
    return /^(https?:|mailto:|tg:)/i.test(href || "") ? href : null;
  }

  // A copy of the subset of `html` the bot may format with; everything else becomes text.
  function render(html, into) {
    var doc = new DOMParser().parseFromString("<body>" + html, "text/html");
    (function walk(from, to) {
      from.childNodes.forEach(function (node) {
        if (node.nodeType === 3) {
          to.appendChild(document.createTextNode(node.nodeValue));
        } else if (node.nodeType === 1) {
          var name = node.tagName;
          if (name === "BR") { to.appendChild(document.createTextNode("\n")); return; }
          if (!ALLOWED[name]) { walk(node, to); return; }
          var el = document.createElement(name.toLowerCase());
          if (name === "A") {
            var href = safeHref(node.getAttribute("href"));
            if (href) { el.href = href; el.target = "_blank"; el.rel = "noopener noreferrer"; }
          }
          if (name === "TG-SPOILER") {
            el.addEventListener("click", function () { el.classList.add("shown"); });
          }
          walk(node, el);
          to.appendChild(el);
        }
      });
    })(doc.body, into);
  }

  async function api(method, path, body) {
    var options = { method: method, credentials: "same-origin", headers: {} };
    if (method === "POST") {
      options.headers["Content-Type"] = "application/json";
      options.headers["X-Shuxiang-CSRF"] = path === "api/signin" ? pre : csrf;
      options.body = JSON.stringify(body || {});
    }
    var response = await fetch(path, options);
    var data = {};
    try { data = await response.json(); } catch (e) { data = {}; }
    if (response.status === 401) { signedOut(S.signed_out); throw new Error("signed out"); }
    if (!response.ok) { var err = new Error(data.message || response.status); err.data = data; err.status = response.status; throw err; }
    return data;
  }

  function toast(text) {
    var el = $("toast");
    el.textContent = text;
    el.hidden = false;
    clearTimeout(toast.timer);
    toast.timer = setTimeout(function () { el.hidden = true; }, 2500);
  }

  function alertBox(text) {
    var box = $("alert");
    box.querySelector(".text").textContent = text;
    box.hidden = false;
    box.querySelector("button").focus();
  }

  function show(signedIn) {
    $("signin").hidden = signedIn;
    $("log").hidden = !signedIn;
    $("compose").hidden = !signedIn;
    $("signout").hidden = !signedIn;
    if (!signedIn) { $("keyboard").hidden = true; $("commands").hidden = true; }
  }

  function signedOut(message) {
    polling += 1;
    show(false);
    $("who").textContent = "";
    $("log").textContent = "";
    nodes = {};
    seq = 0;
    $("signin-error").textContent = message || "";
    refreshState();
  }

  function buttonsOf(message) {
    var box = document.createElement("div");
    box.className = "buttons";
    (message.buttons || []).forEach(function (row) {
      var line = document.createElement("div");
      line.className = "row";
      row.forEach(function (button) {
        var el;
        if (button.url) {
          el = document.createElement("a");
          var href = safeHref(button.url);
          if (href) { el.href = href; el.target = "_blank"; el.rel = "noopener noreferrer"; }
        } else {
          el = document.createElement("button");
          el.type = "button";
          el.addEventListener("click", function () { press(message.id, button.data, el); });
        }
        el.textContent = button.text;
        line.appendChild(el);
      });
      box.appendChild(line);
    });
    return box;
  }

  function draw(message) {
    var old = nodes[message.id];
    if (message.deleted) {
      if (old) { old.remove(); delete nodes[message.id]; }
      return;
    }
    var el = document.createElement("div");
    el.className = "msg " + (message.out ? "out" : "in");
    el.dataset.id = message.id;
    if (message.media === "photo" && message.file) {
      var img = document.createElement("img");
      img.src = "api/file/" + Number(message.file);
      img.alt = "";
      el.appendChild(img);
    } else if (message.media === "document" && message.file) {
      var link = document.createElement("a");
      link.href = "api/file/" + Number(message.file);
      link.textContent = "📄 " + S.open_file;
      link.setAttribute("download", "");
      el.appendChild(link);
    }
    var body = document.createElement("div");
    body.className = "body";
    render(message.html || "", body);
    el.appendChild(body);
    if (message.buttons && message.buttons.length) el.appendChild(buttonsOf(message));
    var meta = document.createElement("div");
    meta.className = "meta";
    var when = new Date(message.date * 1000);
    meta.textContent = (message.edited ? S.edited + " · " : "") +
      when.toLocaleTimeString("zh-CN", { hour: "2-digit", minute: "2-digit", hour12: false });
    el.appendChild(meta);
    if (old) { old.replaceWith(el); } else { $("log").appendChild(el); }
    nodes[message.id] = el;
  }

  function drawKeyboard(keyboard) {
    var box = $("keyboard");
    box.textContent = "";
    var rows = keyboard && keyboard.keyboard;
    box.hidden = !rows || !rows.length;
    (rows || []).forEach(function (row) {
      var line = document.createElement("div");
      line.className = "row";
      row.forEach(function (button) {
        var el = document.createElement("button");
        el.type = "button";
        el.textContent = typeof button === "string" ? button : button.text;
        el.addEventListener("click", function () { send(el.textContent); });
        line.appendChild(el);
      });
      box.appendChild(line);
    });
  }

  function drawCommands(commands) {
    var box = $("commands");
    box.textContent = "";
    (commands || []).forEach(function (command) {
      var el = document.createElement("button");
      el.type = "button";
      el.dataset.command = command.command;
      var name = document.createElement("b");
      name.textContent = "/" + command.command;
      el.appendChild(name);
      el.appendChild(document.createTextNode(command.description));
      el.addEventListener("click", function () { box.hidden = true; send("/" + command.command); });
      box.appendChild(el);
    });
  }

  function apply(changes) {
    var log = $("log");
    var atBottom = log.scrollHeight - log.scrollTop - log.clientHeight < 80;
    (changes.messages || []).forEach(draw);
    drawKeyboard(changes.keyboard);
    drawCommands(changes.commands);
    seq = Math.max(seq, changes.seq || 0);
    if (atBottom || (changes.messages || []).some(function (m) { return !m.out; })) {
      log.scrollTop = log.scrollHeight;
    }
  }

  async function poll(generation) {
    var wait = 0;
    var failures = 0;
    while (generation === polling) {
      try {
        var changes = await api("GET", "api/updates?after=" + seq + "&wait=" + wait);
        if (generation !== polling) return;
        $("banner").hidden = true;
        failures = 0;
        if ((changes.seq || 0) < seq) {
          // The conversation is not the one this page saw (kept days passed, a new card): redraw.
          $("log").textContent = "";
          nodes = {};
          seq = 0;
          wait = 0;
          continue;
        }
        apply(changes);
        wait = 25;
      } catch (e) {
        if (generation !== polling) return;
        failures += 1;
        $("banner").textContent = S.offline;
        $("banner").hidden = false;
        await new Promise(function (r) { setTimeout(r, Math.min(1000 * failures, 10000)); });
      }
    }
  }

  async function send(text) {
    text = (text || "").trim();
    if (!text) return;
    try {
      await api("POST", "api/send", { text: text });
    } catch (e) {
      if (e.data && e.data.message) toast(e.data.message);
    }
  }

  async function press(id, data, el) {
    el.disabled = true;
    try {
      var answer = await api("POST", "api/press", { message: id, data: data });
      if (answer.text) { if (answer.alert) alertBox(answer.text); else toast(answer.text); }
    } catch (e) {
      if (e.data && e.data.message) toast(e.data.message);
    } finally {
      el.disabled = false;
    }
  }

  function signedIn(state) {
    csrf = state.csrf;
    $("who").textContent = state.name || "";
    $("signin-error").textContent = "";
    show(true);
    // The code has done its work: out of the address bar and the history.
    if (location.search) history.replaceState(null, "", location.pathname);
    polling += 1;
    poll(polling);
  }

  async function refreshState() {
    var state = await api("GET", "api/state");
    S = state.strings || S;
    csrf = state.csrf || "";
    pre = state.pre;
    $("name").textContent = S.bot_name;
    $("signin-title").textContent = S.signin_title;
    $("signin-hint").textContent = S.signin_hint;
    $("code-label").textContent = S.code_label;
    $("signin-button").textContent = S.signin_button;
    $("send").textContent = S.send;
    $("menu").textContent = S.menu;
    $("signout").textContent = S.sign_out;
    $("text").placeholder = S.input_placeholder;
    if (state.signed_in) { signedIn(state); return; }
    show(false);
    var code = new URLSearchParams(location.search).get("code");
    if (code && !$("code").value) $("code").value = code.toUpperCase().slice(0, 16);
  }

  document.addEventListener("DOMContentLoaded", function () {
    $("signin").addEventListener("submit", async function (event) {
      event.preventDefault();
      $("signin-error").textContent = "";
      try {
        await api("POST", "api/signin", { code: $("code").value });
        $("code").value = "";
        await refreshState();
      } catch (e) {
        $("signin-error").textContent = (e.data && e.data.message) || S.signin_refused;
      }
    });
    $("compose").addEventListener("submit", function (event) {
      event.preventDefault();
      var text = $("text").value;
      $("text").value = "";
      send(text);
    });
    $("menu").addEventListener("click", function () { $("commands").hidden = !$("commands").hidden; });
    $("signout").addEventListener("click", async function () {
      try { await api("POST", "api/signout"); } catch (e) { /* signed out either way */ }
      signedOut("");
    });
    $("alert").querySelector("button").addEventListener("click", function () { $("alert").hidden = true; });
    refreshState().catch(function () {
      $("banner").textContent = S.offline || "…";
      $("banner").hidden = false;
    });
  });
})();
