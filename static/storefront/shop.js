/* Kassa: the customer's Mini App (the shop). The shell (signing, MainButton / BackButton,
   htmx) is common/tma.js; this file keeps the cart in localStorage, asks Telegram for the
   phone number, opens the payment link and copies it, and starts at my orders when the
   bot's button asked for them. */
(function () {
  "use strict";

  var T = window.KassaTma;
  var tg = T.tg;
  var body = T.body;
  var CART = "kassa.shop.cart";      // {product_id: quantity in the product's measure}
  var PRICES = "kassa.shop.prices";  // {product_id: kopecks last shown}: hints, never trusted

  // -- the cart -------------------------------------------------------------------------------

  function cartValues() {
    var cart = T.load(CART), prices = T.load(PRICES), v = { product_id: [], qty: [], price: [] };
    Object.keys(cart).forEach(function (id) {
      v.product_id.push(id);
      v.qty.push(String(cart[id]));
      v.price.push(prices[id] ? String(prices[id]) : "");
    });
    return v;
  }
  function summary() {
    var cart = T.load(CART), prices = T.load(PRICES), count = 0, sum = 0;
    Object.keys(cart).forEach(function (id) {
      count += 1;
      sum += Math.round((prices[id] || 0) * cart[id]);
    });
    return { count: count, sum: sum };
  }
  function syncFromCartScreen(screen) {
    // The cart screen is priced by the server: it is the truth about what the cart holds.
    var cart = {}, prices = T.load(PRICES);
    screen.querySelectorAll("[data-testid=line]").forEach(function (line) {
      cart[line.dataset.productId] = parseFloat(line.dataset.qty);
      prices[line.dataset.productId] = parseInt(line.dataset.price, 10);
    });
    T.save(CART, cart);
    T.save(PRICES, prices);
  }
  function markInCart(screen) {
    var cart = T.load(CART);
    var badge = screen.querySelector("[data-testid=cart-count]");
    if (badge) badge.textContent = String(Object.keys(cart).length);
    screen.querySelectorAll("[data-product-id]").forEach(function (product) {
      var mark = product.querySelector("[data-in-cart]"), q = cart[product.dataset.productId];
      if (!mark) return;
      mark.hidden = !q;
      if (q) mark.textContent = body.dataset.inCart.replace("{n}", String(q).replace(".", ","));
    });
    return summary();
  }

  // -- the shop's own screen attributes ------------------------------------------------------

  function openLink(link) {
    T.haptic("light");
    if (T.inTelegram && tg.openLink && T.call(function () { tg.openLink(link); return true; })) return true;
    return false;
  }

  function primary(screen) {
    var d = screen.dataset;
    if (d.primaryCart || !d.primaryText || !d.primaryLink) return false;
    T.setPrimary(d.primaryText, function () {
      if (!openLink(d.primaryLink)) window.location.href = d.primaryLink;
    });
    return true;
  }
  function back(screen) {
    var d = screen.dataset;
    if (!d.backCart) return false;
    T.setBack(function () { T.postCart(d.backCart); });
    return true;
  }

  function onScreen(screen) {
    var d = screen.dataset;
    if (d.syncCart === "true") syncFromCartScreen(screen);
    if (d.clearCart === "true") { T.save(CART, {}); }
    var share = screen.querySelector("[data-request-contact]");
    if (share) share.hidden = !(T.inTelegram && tg.requestContact && T.call(function () { return tg.isVersionAtLeast("6.9"); }));
  }

  document.addEventListener("htmx:configRequest", function (e) {
    if (tg && tg.platform) e.detail.headers["X-Telegram-Platform"] = tg.platform;
  });

  // -- taps ---------------------------------------------------------------------------------------

  function copy(input) {
    var done = function () { T.toast(body.dataset.copied); T.haptic("light"); };
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
    T.call(function () {
      tg.requestContact(function (shared, event) {
        var contact = shared && event && event.responseUnsafe && event.responseUnsafe.contact;
        if (!contact || !contact.phone_number) return;
        var phone = String(contact.phone_number).replace(/[^\d+]/g, "");
        input.value = phone.charAt(0) === "+" ? phone : "+" + phone;
        T.haptic("success");
      });
    });
  }

  function click(e, t) {
    var add = t.closest("[data-add]");
    if (add) {
      var product = add.closest("[data-product-id]"), id = product.dataset.productId;
      var cart = T.load(CART), prices = T.load(PRICES);
      cart[id] = Math.round(((cart[id] || 0) + 1) * 1000) / 1000;
      prices[id] = parseInt(product.dataset.price, 10);
      T.save(CART, cart);
      T.save(PRICES, prices);
      T.haptic("light");
      T.primaryFor(T.screenEl());
      return true;
    }
    var link = t.closest("[data-link]");
    if (link) {
      // Telegram opens https links outside the webview; the bank's app takes it from there.
      if (openLink(link.dataset.link)) e.preventDefault();
      return true;
    }
    var copier = t.closest("[data-copy]");
    if (copier) { copy(document.querySelector(copier.dataset.copy)); return true; }
    if (t.closest("[data-request-contact]")) { requestPhone(T.screenEl()); return true; }
    return false;
  }

  // -- start: the catalog, or my orders when the bot's button asked for them ------------------

  var start = (tg && tg.initDataUnsafe && tg.initDataUnsafe.start_param) || "";
  T.start({ cartValues: cartValues, markCart: markInCart, primary: primary, back: back,
            screen: onScreen, click: click, toastMs: 3000, scrollTop: true },
          start === "orders" ? body.dataset.ordersUrl : body.dataset.catalogUrl);
})();
