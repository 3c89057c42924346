/* Kassa: the customer's Mini App (the shop). Screens come from the server (htmx); this file
   signs each request with Telegram's initData, keeps the cart in localStorage, maps each
   screen's data attributes onto Telegram's MainButton / BackButton (or in-page buttons
   outside Telegram), asks Telegram for the phone number, and opens the payment link. */
(function () {
  "use strict";

  var tg = (window.Telegram && window.Telegram.WebApp) || null;
  var initData = (tg && tg.initData) || "";
  var inTelegram = initData !== "";
  var body = document.body;
  var CART = "kassa.shop.cart";      // {product_id: quantity in the product's measure}
  var PRICES = "kassa.shop.prices";  // {product_id: kopecks last shown}: hints, never trusted
  var primaryButton = document.querySelector("[data-testid=primary]");
  var primaryBar = document.querySelector(".primary-bar");
  var topbar = document.querySelector(".topbar");
  var primaryAction = null, backAction = null, lastScreen = null;

  function screenEl() { return document.querySelector("#screen > .screen"); }
  function call(fn) { try { return fn(); } catch (e) { return undefined; } }
  function haptic(kind) {
    if (tg && tg.HapticFeedback) call(function () {
      if (kind === "light") tg.HapticFeedback.impactOccurred("light");
      else tg.HapticFeedback.notificationOccurred(kind);
    });
  }
  function toast(text) {
    var el = document.getElementById("toast");
    el.textContent = text;
    el.hidden = false;
    clearTimeout(toast.timer);
    toast.timer = setTimeout(function () { el.hidden = true; }, 3000);
  }

  if (tg) {
    call(function () { tg.ready(); tg.expand(); });
    if (inTelegram) {
      tg.MainButton.onClick(function () { if (primaryAction) primaryAction(); });
      call(function () { tg.BackButton.onClick(function () { if (backAction) backAction(); }); });
    }
  }

  // -- the cart -------------------------------------------------------------------------------

  function load(key) { try { return JSON.parse(localStorage.getItem(key)) || {}; } catch (e) { return {}; } }
  function save(key, value) { try { localStorage.setItem(key, JSON.stringify(value)); } catch (e) { /* private mode */ } }
  function cartValues() {
    var cart = load(CART), prices = load(PRICES), v = { product_id: [], qty: [], price: [] };
    Object.keys(cart).forEach(function (id) {
      v.product_id.push(id);
      v.qty.push(String(cart[id]));
      v.price.push(prices[id] ? String(prices[id]) : "");
    });
    return v;
  }
  function rubles(k) {
    return String(Math.floor(k / 100)).replace(/\B(?=(\d{3})+(?!\d))/g, "\u00a0") + "," +
      String(k % 100).padStart(2, "0") + "\u00a0₽";
  }
  function summary() {
    var cart = load(CART), prices = load(PRICES), count = 0, sum = 0;
    Object.keys(cart).forEach(function (id) {
      count += 1;
      sum += Math.round((prices[id] || 0) * cart[id]);
    });
    return { count: count, sum: sum };
  }
  function postCart(url) {
    htmx.ajax("POST", url, { target: "#screen", values: cartValues() });
  }
  function syncFromCartScreen(screen) {
    // The cart screen is priced by the server: it is the truth about what the cart holds.
    var cart = {}, prices = load(PRICES);
    screen.querySelectorAll("[data-testid=line]").forEach(function (line) {
      cart[line.dataset.productId] = parseFloat(line.dataset.qty);
      prices[line.dataset.productId] = parseInt(line.dataset.price, 10);
    });
    save(CART, cart);
    save(PRICES, prices);
  }
  function markInCart(screen) {
    var cart = load(CART);
    var badge = screen.querySelector("[data-testid=cart-count]");
    if (badge) badge.textContent = String(Object.keys(cart).length);
    screen.querySelectorAll("[data-product-id]").forEach(function (product) {
      var mark = product.querySelector("[data-in-cart]"), q = cart[product.dataset.productId];
      if (!mark) return;
      mark.hidden = !q;
      if (q) mark.textContent = body.dataset.inCart.replace("{n}", String(q).replace(".", ","));
    });
  }

  // -- the screen's actions ---------------------------------------------------------------

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
  function openLink(link) {
    haptic("light");
    if (inTelegram && tg.openLink && call(function () { tg.openLink(link); return true; })) return true;
    return false;
  }

  function primaryFor(screen) {
    var d = screen.dataset;
    if (d.primaryCart) {
      markInCart(screen);
      var s = summary();
      if (!s.count) return setPrimary(null);
      return setPrimary(body.dataset.cartLabel + " · " + rubles(s.sum), function () { postCart(d.primaryCart); });
    }
    if (!d.primaryText) return setPrimary(null);
    var disabled = d.primaryDisabled === "true";
    if (d.primaryLink) {
      return setPrimary(d.primaryText, function () {
        if (!openLink(d.primaryLink)) window.location.href = d.primaryLink;
      });
    }
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
    if (d.backCart) return setBack(function () { postCart(d.backCart); });
    if (d.back) return setBack(function () { htmx.ajax("GET", d.back, { target: "#screen" }); });
    setBack(null);
  }

  function tick() {
    document.querySelectorAll("[data-testid=countdown][data-expires-at]").forEach(function (el) {
      var left = Math.max(0, Math.floor((Date.parse(el.dataset.expiresAt) - Date.now()) / 1000));
      el.textContent = Math.floor(left / 60) + ":" + String(left % 60).padStart(2, "0");
    });
  }

  function onScreen() {
    var screen = screenEl();
    if (!screen) return;
    var d = screen.dataset, key = d.screen + ":" + (d.order || "");
    if (d.syncCart === "true") syncFromCartScreen(screen);
    if (d.clearCart === "true") { save(CART, {}); }
    if (d.haptic && key !== lastScreen) haptic(d.haptic);
    lastScreen = key;
    var share = screen.querySelector("[data-request-contact]");
    if (share) share.hidden = !(inTelegram && tg.requestContact && call(function () { return tg.isVersionAtLeast("6.9"); }));
    primaryFor(screen);
    backFor(screen);
    tick();
  }
  setInterval(tick, 1000);

  // -- htmx -------------------------------------------------------------------------------------

  htmx.config.responseHandling = [{ code: "204", swap: false }, { code: "[2345]..", swap: true }];
  htmx.config.historyEnabled = false;

  document.addEventListener("htmx:configRequest", function (e) {
    if (initData) e.detail.headers.Authorization = "tma " + initData;
    if (tg && tg.platform) e.detail.headers["X-Telegram-Platform"] = tg.platform;
  });
  document.addEventListener("htmx:beforeSwap", function (e) {
    // A poll that finds the same state keeps the screen (no flicker of the QR).
    var elt = e.detail.requestConfig && e.detail.requestConfig.elt;
    if (!elt || !elt.dataset || elt.dataset.poll !== "true" || e.detail.xhr.status !== 200) return;
    var m = /data-state="([^"]*)"/.exec(e.detail.serverResponse || "");
    if (m && m[1] === elt.dataset.state && elt.isConnected) e.detail.shouldSwap = false;
  });
  document.addEventListener("htmx:afterSettle", function (e) {
    var target = e.detail.target;
    if (target && target.id === "screen") { onScreen(); window.scrollTo(0, 0); }
    else if (target && target.id === "products") markInCart(screenEl());
  });
  document.addEventListener("htmx:sendError", function () { toast(body.dataset.offline); });

  // -- taps ---------------------------------------------------------------------------------------

  function copy(input) {
    var done = function () { toast(body.dataset.copied); haptic("light"); };
    input.select();
    if (navigator.clipboard && window.isSecureContext) {
      navigator.clipboard.writeText(input.value).then(done, function () { document.execCommand("copy"); done(); });
    } else {
      document.execCommand("copy");
      done();
    }
  }

  function requestPhone(screen) {
    var input = screen.querySelector("[data-testid=contact]");
    call(function () {
      tg.requestContact(function (shared, event) {
        var contact = shared && event && event.responseUnsafe && event.responseUnsafe.contact;
        if (!contact || !contact.phone_number) return;
        var phone = String(contact.phone_number).replace(/[^\d+]/g, "");
        input.value = phone.charAt(0) === "+" ? phone : "+" + phone;
        haptic("success");
      });
    });
  }

  document.addEventListener("click", function (e) {
    var t = e.target;
    var add = t.closest("[data-add]");
    if (add) {
      var product = add.closest("[data-product-id]"), id = product.dataset.productId;
      var cart = load(CART), prices = load(PRICES);
      cart[id] = Math.round(((cart[id] || 0) + 1) * 1000) / 1000;
      prices[id] = parseInt(product.dataset.price, 10);
      save(CART, cart);
      save(PRICES, prices);
      haptic("light");
      primaryFor(screenEl());
      return;
    }
    var opener = t.closest("[data-cart-open]");
    if (opener) { e.preventDefault(); postCart(opener.getAttribute("href")); return; }
    var remove = t.closest("[data-remove]");
    if (remove) {
      var qty = remove.closest("[data-testid=line]").querySelector("[data-testid=qty]");
      qty.value = "0";
      htmx.trigger(qty, "change");
      return;
    }
    var link = t.closest("[data-link]");
    if (link) {
      // Telegram opens https links outside the webview; the bank's app takes it from there.
      if (openLink(link.dataset.link)) e.preventDefault();
      return;
    }
    var copier = t.closest("[data-copy]");
    if (copier) { copy(document.querySelector(copier.dataset.copy)); return; }
    if (t.closest("[data-request-contact]")) { requestPhone(screenEl()); return; }
    if (t === primaryButton && primaryAction) { primaryAction(); return; }
    if (t.closest("[data-testid=back]") && backAction) backAction();
  });

  // -- start: the catalog, or my orders when the bot's button asked for them ------------------

  var start = (tg && tg.initDataUnsafe && tg.initDataUnsafe.start_param) || "";
  htmx.ajax("GET", start === "orders" ? body.dataset.ordersUrl : body.dataset.catalogUrl, { target: "#screen" });
})();
