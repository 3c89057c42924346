/* Kassa: the shell both Telegram Mini Apps share (the cashier's till, the customer's shop).
   Screens come from the server (htmx); this file signs each request with Telegram's initData,
   maps each screen's data attributes onto Telegram's MainButton / BackButton (or the in-page
   buttons outside Telegram), plays haptics, counts down, shows toasts and keeps a polled
   screen that did not change. Each app's own script calls KassaTma.start(app) with what
   only it does (its cart, its extra actions). No build step. */
(function () {
  "use strict";

  var tg = (window.Telegram && window.Telegram.WebApp) || null;
  var initData = (tg && tg.initData) || "";
  var inTelegram = initData !== "";
  var body = document.body;
  var primaryButton = document.querySelector("[data-testid=primary]");
  var primaryBar = document.querySelector(".primary-bar");
  var topbar = document.querySelector(".topbar");
  var app = {};  // the hooks the app passed to start()
  var lastScreen = null;
  var primaryAction = null;
  var backAction = null;

  // -- Telegram ------------------------------------------------------------------------------

  function call(fn) {
    try { return fn(); } catch (e) { return undefined; }  // a method this client lacks
  }

  function haptic(kind) {
    if (!tg || !tg.HapticFeedback) return;
    call(function () {
      if (kind === "light") tg.HapticFeedback.impactOccurred("light");
      else tg.HapticFeedback.notificationOccurred(kind);
    });
  }

  if (tg) {
    call(function () { tg.ready(); });
    call(function () { tg.expand(); });
    if (inTelegram) {
      tg.MainButton.onClick(function () { if (primaryAction) primaryAction(); });
      call(function () { tg.BackButton.onClick(function () { if (backAction) backAction(); }); });
    }
  }

  // -- small helpers -------------------------------------------------------------------------

  function screenEl() { return document.querySelector("#screen > .screen"); }

  function load(key) {
    try { return JSON.parse(localStorage.getItem(key)) || {}; } catch (e) { return {}; }
  }
  function save(key, value) {
    try { localStorage.setItem(key, JSON.stringify(value)); } catch (e) { /* private mode */ }
  }

  function rubles(kopecks) {
    return String(Math.floor(kopecks / 100)).replace(/\B(?=(\d{3})+(?!\d))/g, "\u00a0") + "," +
      String(kopecks % 100).padStart(2, "0") + "\u00a0₽";
  }

  function toast(text) {
    var el = document.getElementById("toast");
    el.textContent = text;
    el.hidden = false;
    clearTimeout(toast.timer);
    toast.timer = setTimeout(function () { el.hidden = true; }, app.toastMs || 4000);
  }

  function go(method, url) { htmx.ajax(method, url, { target: "#screen" }); }

  function postCart(url) {
    htmx.ajax("POST", url, { target: "#screen", values: app.cartValues() });
  }

  // -- the screen's actions ----------------------------------------------------------------

  function setPrimary(text, action, disabled) {
    primaryAction = disabled ? null : action;
    if (inTelegram) {
      if (text) tg.MainButton.setParams({ text: text, is_visible: true, is_active: !disabled });
      else tg.MainButton.hide();
      primaryBar.hidden = true;
    } else {
      primaryBar.hidden = !text;
      primaryButton.textContent = text || "";
      primaryButton.disabled = !!disabled;
    }
  }

  function setBack(action) {
    backAction = action;
    if (inTelegram) {
      call(function () { if (action) tg.BackButton.show(); else tg.BackButton.hide(); });
      topbar.hidden = true;
    } else {
      topbar.hidden = !action;
    }
  }

  // The primary action: the app's own first (app.primary returns true when it set one), then
  // the cart ("Корзина · 1 234,00 ₽"), a form to submit, or a URL to load into the screen.
  function primaryFor(screen) {
    var d = screen.dataset;
    if (app.primary && app.primary(screen)) return;
    if (d.primaryCart) {
      var summary = app.markCart(screen);
      if (!summary.count) return setPrimary(null);
      return setPrimary((d.cartLabel || body.dataset.cartLabel || "Корзина") + " · " + rubles(summary.sum),
                        function () { postCart(d.primaryCart); });
    }
    if (!d.primaryText) return setPrimary(null);
    var disabled = d.primaryDisabled === "true";
    if (d.primaryForm) {
      return setPrimary(d.primaryText, function () {
        var form = screen.querySelector(d.primaryForm);
        if (form) htmx.trigger(form, "submit");
      }, disabled);
    }
    setPrimary(d.primaryText, function () {
      go((d.primaryMethod || "get").toUpperCase(), d.primaryUrl);
    }, disabled);
  }

  // Back: the app's own first (app.back returns true when it set one), then data-back.
  function backFor(screen) {
    var d = screen.dataset;
    if (app.back && app.back(screen)) return;
    if (d.back) return setBack(function () { go("GET", d.back); });
    setBack(null);
  }

  function tickCountdowns() {
    document.querySelectorAll("[data-testid=countdown][data-expires-at]").forEach(function (el) {
      var left = Math.max(0, Math.floor((Date.parse(el.dataset.expiresAt) - Date.now()) / 1000));
      el.textContent = Math.floor(left / 60) + ":" + String(left % 60).padStart(2, "0");
    });
  }

  function onScreen() {
    var screen = screenEl();
    if (!screen) return;
    var d = screen.dataset;
    var key = d.screen + ":" + (d.orderId || d.order || "");
    if (app.screen) app.screen(screen);  // the cart it shows or clears, its own widgets
    if (d.haptic && key !== lastScreen) haptic(d.haptic);
    lastScreen = key;
    primaryFor(screen);
    backFor(screen);
    tickCountdowns();
  }

  // -- htmx wiring ---------------------------------------------------------------------------

  htmx.config.responseHandling = [
    { code: "204", swap: false },
    { code: "[2345]..", swap: true },  // refusals and errors are screens too
  ];
  htmx.config.historyEnabled = false;

  document.addEventListener("htmx:configRequest", function (e) {
    if (initData) e.detail.headers["Authorization"] = "tma " + initData;
  });

  document.addEventListener("htmx:beforeSwap", function (e) {
    // A poll that finds the same state keeps the screen as it is (no flicker of the QR).
    var elt = e.detail.requestConfig && e.detail.requestConfig.elt;
    if (!elt || !elt.dataset || elt.dataset.poll !== "true" || e.detail.xhr.status !== 200) return;
    var m = /data-state="([^"]*)"/.exec(e.detail.serverResponse || "");
    if (m && m[1] === elt.dataset.state && elt.isConnected) e.detail.shouldSwap = false;
  });

  document.addEventListener("htmx:afterSettle", function (e) {
    var target = e.detail.target;
    if (target && target.id === "screen") {
      onScreen();
      if (app.scrollTop) window.scrollTo(0, 0);
    } else if (target && target.id === "products") {
      app.markCart(screenEl());
    }
  });

  document.addEventListener("htmx:sendError", function () { toast(body.dataset.offline); });

  // -- taps: the app's own first (app.click returns true when it handled the tap) -------------

  document.addEventListener("click", function (e) {
    var t = e.target;
    if (app.click && app.click(e, t)) return;
    var opener = t.closest("[data-cart-open]");
    if (opener) { e.preventDefault(); postCart(opener.getAttribute("href")); return; }
    var remove = t.closest("[data-remove]");
    if (remove) {
      var qty = remove.closest("[data-testid=line]").querySelector("[data-testid=qty]");
      qty.value = "0";
      htmx.trigger(qty, "change");
      return;
    }
    if (t === primaryButton && primaryAction) { primaryAction(); return; }
    if (t.closest("[data-testid=back]") && backAction) backAction();
  });

  // -- the app -------------------------------------------------------------------------------

  // app: { cartValues() -> the cart as the form posts it, markCart(screen) -> {count, sum}
  //        (and marks what is in the cart), and optionally primary(screen), back(screen),
  //        screen(screen), click(event, target), toastMs, scrollTop }; url: the first screen.
  function start(hooks, url) {
    app = hooks;
    setInterval(tickCountdowns, 1000);
    go("GET", url);
  }

  window.KassaTma = {
    tg: tg, initData: initData, inTelegram: inTelegram, body: body,
    call: call, haptic: haptic, toast: toast, rubles: rubles, load: load, save: save,
    screenEl: screenEl, go: go, postCart: postCart, setPrimary: setPrimary, setBack: setBack,
    primaryFor: primaryFor, start: start,
  };
})();
