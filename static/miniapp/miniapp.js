/* Kassa: the cashier's Mini App. The shell (signing, MainButton / BackButton, htmx) is
   common/tma.js; this file keeps the cart in localStorage (ids and quantities, prices only as
   a hint for the button's text), confirms cancelling a QR and asks before closing one. */
(function () {
  "use strict";

  var T = window.KassaTma;
  var tg = T.tg;
  var CART_KEY = "kassa.cart.v1";

  function confirmThen(text, then) {
    if (T.inTelegram && tg.showConfirm) {
      var shown = T.call(function () { tg.showConfirm(text, function (ok) { if (ok) then(); }); return true; });
      if (shown) return;
    }
    if (window.confirm(text)) then();
  }

  // -- the cart (ids and quantities; prices only as a hint for the button's text) -----------

  function loadCart() { return T.load(CART_KEY); }
  function saveCart(cart) { T.save(CART_KEY, cart); }
  function cartValues() {
    var cart = loadCart(), ids = [], qty = [];
    Object.keys(cart).forEach(function (id) {
      var q = cart[id].q;
      ids.push(id);
      qty.push(Math.floor(q / 1000) + (q % 1000 ? "." + String(q % 1000).padStart(3, "0") : ""));
    });
    return { product_id: ids, qty: qty };
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

  // -- the till's own screen attributes ------------------------------------------------------

  var qrOpen = false;
  function closingFor(screen) {
    qrOpen = screen.dataset.closingConfirmation === "true";
    if (tg) T.call(function () {
      if (qrOpen) tg.enableClosingConfirmation(); else tg.disableClosingConfirmation();
    });
  }
  window.addEventListener("beforeunload", function (e) {
    if (qrOpen && !T.inTelegram) { e.preventDefault(); e.returnValue = ""; }
  });

  function back(screen) {
    var d = screen.dataset;
    if (!d.backCancel) return false;
    T.setBack(function () {
      confirmThen(T.body.dataset.confirmCancel, function () { T.go("POST", d.backCancel); });
    });
    return true;
  }

  function onScreen(screen) {
    if (screen.dataset.screen === "cart") syncCartFromScreen(screen);
    if (screen.dataset.clearCart === "true") saveCart({});
    closingFor(screen);
  }

  function click(e, t) {
    var add = t.closest("[data-add]");
    if (!add) return false;
    var product = add.closest("[data-testid=product]");
    var cart = loadCart();
    var id = product.dataset.productId;
    var line = cart[id] || { q: 0, p: 0, w: product.dataset.weighed === "true" };
    line.q += 1000;
    line.p = parseInt(product.dataset.price, 10);
    cart[id] = line;
    saveCart(cart);
    T.haptic("light");
    T.primaryFor(T.screenEl());
    return true;
  }

  // -- start -----------------------------------------------------------------------------------

  T.start({ cartValues: cartValues, markCart: renderCatalogCart, back: back, screen: onScreen,
            click: click, toastMs: 4000 }, T.body.dataset.catalogUrl);
})();
