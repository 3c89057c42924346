// The pay page: copy its link, and while it waits (a QR to pay, a QR being made, a receipt
// being written) ask the server for its state and reload when the state changes.
(function () {
  "use strict";

  function copy(button) {
    var input = document.querySelector(button.getAttribute("data-copy"));
    var done = function () {
      var label = button.textContent;
      button.textContent = button.getAttribute("data-done");
      setTimeout(function () { button.textContent = label; }, 2000);
    };
    input.select();
    if (navigator.clipboard && window.isSecureContext) {
      navigator.clipboard.writeText(input.value).then(done, function () {
        document.execCommand("copy");
        done();
      });
    } else {
      document.execCommand("copy");
      done();
    }
  }

  function poll(card) {
    var url = card.getAttribute("data-poll");
    var state = card.getAttribute("data-state");
    var delay = 2000;
    function tick() {
      fetch(url, { cache: "no-store", headers: { Accept: "application/json" } })
        .then(function (response) { return response.ok ? response.json() : null; })
        .then(function (data) {
          if (data && data.state && data.state !== state) {
            window.location.reload();
            return;
          }
          delay = 2000;
          setTimeout(tick, delay);
        })
        .catch(function () {  // offline for a moment: try again, less often
          delay = Math.min(delay * 2, 15000);
          setTimeout(tick, delay);
        });
    }
    setTimeout(tick, delay);
  }

  document.addEventListener("DOMContentLoaded", function () {
    document.querySelectorAll("[data-copy]").forEach(function (button) {
      button.addEventListener("click", function () { copy(button); });
    });
    var card = document.querySelector("[data-poll]");
    if (card) poll(card);
  });
})();
