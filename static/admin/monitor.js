/* The monitor's list: rows come two ways (new rows at the top, a waiting order turning into
   its payment in place), so the same row may arrive twice; the upper one stays. Done on
   afterSwap, in the same task as the swap: the page never shows both. */
(function () {
  "use strict";
  document.addEventListener("htmx:afterSwap", function () {
    var seen = {};
    document.querySelectorAll("#payments tbody tr[id^='row-']").forEach(function (row) {
      if (seen[row.id]) row.remove(); else seen[row.id] = true;
    });
  });
})();
