/* Kassa: the cashier's Mini App. Screens come from the server (htmx); this file signs the
   requests, keeps the cart in localStorage, and maps each screen's data attributes onto
   Telegram's MainButton / BackButton (or in-page buttons outside Telegram). No build step. */
(function () {
  "use strict";

  var tg = (window.Telegram && window.Telegram.WebApp) || null;
  var initData = (tg && tg.initData) || "";
  var inTelegram = initData !== "";
  var body = document.body;
  var CART_KEY = "kassa.cart.v1";
  var screenEl = function () { return document.querySelector("#screen > .screen"); };
  var primaryButton = document.querySelector("[data-testid=primary]");
  var primaryBar = document.querySelector(".primary-bar");
  var topbar = document.querySelector(".topbar");
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

  function confirmThen(text, then) {
    if (inTelegram && tg.showConfirm) {
      var shown = call(function () { tg.showConfirm(text, function (ok) { if (ok) then(); }); return true; });
      if (shown) return;
    }
    if (window.confirm(text)) then();
  }

  if (tg) {
    call(function () { tg.ready(); });
    call(function () { tg.expand(); });
    if (inTelegram) {
      tg.MainButton.onClick(function () { if (primaryAction) primaryAction(); });
      call(function () { tg.BackButton.onClick(function () { if (backAction) backAction(); }); });
    }
  }

  // -- the cart (ids and quantities; prices only as a hint for the button's text) -----------

  function loadCart() {
    try { return JSON.parse(localStorage.getItem(CART_KEY)) || {}; } catch (e) { return {}; }
  }
  function saveCart(cart) {
    try { localStorage.setItem(CART_KEY, JSON.stringify(cart)); } catch (e) { /* private mode */ }
  }
  function cartValues(cart) {
    var ids = [], qty = [];
    Object.keys(cart).forEach(function (id) {
      var q = cart[id].q;
      ids.push(id);
      qty.push(Math.floor(q / 1000) + (q % 1000 ? "." + String(q % 1000).padStart(3, "0") : ""));
    });
    return { product_id: ids, qty: qty };
  }
  function rubles(kopecks) {
    var r = Math.floor(kopecks / 100), k = kopecks % 100;
    return String(r).replace(/\B(?=(\d{3})+(?!\d))/g, "\u00a0") + "," + String(k).padStart(2, "0") + "\u00a0₽";
  }
  function cartSummary(cart) {
    var count = 0, sum = 0;
    Object.keys(cart).forEach(function (id) {
      var line = cart[id];
      count += line.w ? 1 : Math.round(line.q / 1000);
      sum += Math.floor((2 * (line.p || 0) * line.q + 1000) / 2000);
    });
    return { count: count, sum: sum };
  }

  function syncCartFromScreen(screen) {
    // The cart screen is priced by the server: it is the truth about what the cart holds.
    var cart = {};
    screen.querySelectorAll("[data-testid=line]").forEach(function (line) {
      var weighed = line.querySelector("[data-testid=qty]").getAttribute("step") !== "1";
      cart[line.dataset.productId] = { q: parseInt(line.dataset.qtyMilli, 10),
                                       p: parseInt(line.dataset.price, 10), w: weighed };
    });
    saveCart(cart);
  }

  function postCart(url) {
    htmx.ajax("POST", url, { target: "#screen", values: cartValues(loadCart()) });
  }

  function renderCatalogCart(screen) {
    var cart = loadCart();
    var summary = cartSummary(cart);
    var badge = screen.querySelector("[data-testid=cart-count]");
    if (badge) badge.textContent = String(summary.count);
    screen.querySelectorAll("[data-testid=product]").forEach(function (product) {
      var mark = product.querySelector("[data-in-cart]");
      var line = cart[product.dataset.productId];
      if (!mark) return;
      mark.hidden = !line;
      if (line) mark.textContent = "× " + (line.w ? (line.q / 1000).toString().replace(".", ",") : Math.round(line.q / 1000));
    });
    return summary;
  }

  // -- the screen's actions ----------------------------------------------------------------

  function setPrimary(text, action, disabled) {
    primaryAction = disabled ? null : action;
    if (inTelegram) {
      if (text) {
        tg.MainButton.setParams({ text: text, is_visible: true, is_active: !disabled });
      } else {
        tg.MainButton.hide();
      }
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

  function primaryFor(screen) {
    var d = screen.dataset;
    if (d.primaryCart) {
      var summary = renderCatalogCart(screen);
      if (!summary.count) return setPrimary(null);
      return setPrimary((d.cartLabel || "Корзина") + " · " + rubles(summary.sum),
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
      htmx.ajax((d.primaryMethod || "get").toUpperCase(), d.primaryUrl, { target: "#screen" });
    }, disabled);
  }

  function backFor(screen) {
    var d = screen.dataset;
    if (d.backCancel) {
      return setBack(function () {
        confirmThen(body.dataset.confirmCancel, function () {
          htmx.ajax("POST", d.backCancel, { target: "#screen" });
        });
      });
    }
    if (d.back) return setBack(function () { htmx.ajax("GET", d.back, { target: "#screen" }); });
    setBack(null);
  }

  var qrOpen = false;
  function closingFor(screen) {
    qrOpen = screen.dataset.closingConfirmation === "true";
    if (tg) call(function () {
      if (qrOpen) tg.enableClosingConfirmation(); else tg.disableClosingConfirmation();
    });
  }
  window.addEventListener("beforeunload", function (e) {
    if (qrOpen && !inTelegram) { e.preventDefault(); e.returnValue = ""; }
  });

  var countdownTimer = null;
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
    var key = d.screen + ":" + (d.orderId || "");
    if (d.screen === "cart") syncCartFromScreen(screen);
    if (d.clearCart === "true") saveCart({});
    if (d.haptic && key !== lastScreen) haptic(d.haptic);
    lastScreen = key;
    primaryFor(screen);
    backFor(screen);
    closingFor(screen);
    tickCountdowns();
    if (!countdownTimer) countdownTimer = setInterval(tickCountdowns, 1000);
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
    if (e.detail.target && e.detail.target.id === "screen") onScreen();
    else if (e.detail.target && e.detail.target.id === "products") renderCatalogCart(screenEl());
  });

  document.addEventListener("htmx:sendError", function () { toast(body.dataset.offline); });

  function toast(text) {
    var el = document.getElementById("toast");
    el.textContent = text;
    el.hidden = false;
    clearTimeout(toast.timer);
    toast.timer = setTimeout(function () { el.hidden = true; }, 4000);
  }

  // -- clicks --------------------------------------------------------------------------------

  document.addEventListener("click", function (e) {
    var add = e.target.closest("[data-add]");
    if (add) {
      var product = add.closest("[data-testid=product]");
      var cart = loadCart();
      var id = product.dataset.productId;
      var line = cart[id] || { q: 0, p: 0, w: product.dataset.weighed === "true" };
      line.q += 1000;
      line.p = parseInt(product.dataset.price, 10);
      cart[id] = line;
      saveCart(cart);
      haptic("light");
      primaryFor(screenEl());
      return;
    }
    if (e.target.closest("[data-cart-open]")) {
      e.preventDefault();
      postCart(e.target.closest("[data-cart-open]").getAttribute("href"));
      return;
    }
    var remove = e.target.closest("[data-remove]");
    if (remove) {
      var qty = remove.closest("[data-testid=line]").querySelector("[data-testid=qty]");
      qty.value = "0";
      htmx.trigger(qty, "change");
      return;
    }
    if (e.target === primaryButton && primaryAction) { primaryAction(); return; }
    if (e.target.closest("[data-testid=back]") && backAction) backAction();
  });

  // -- start -----------------------------------------------------------------------------------

  htmx.ajax("GET", body.dataset.catalogUrl, { target: "#screen" });
})();
