/* aireg pages: small progressive enhancements; every page works without this file. */
(function () {
  "use strict";

  // A site select narrows the line and zone selects to that site's options.
  function narrow(siteSelect) {
    var site = siteSelect.value;
    (siteSelect.getAttribute("data-controls-sites") || "").split(/\s+/).forEach(function (id) {
      var target = document.getElementById(id);
      if (!target) { return; }
      target.querySelectorAll("optgroup[data-site]").forEach(function (group) {
        var hide = Boolean(site) && group.getAttribute("data-site") !== site;
        group.hidden = hide;
        group.disabled = hide;
      });
      var chosen = target.options[target.selectedIndex];
      if (chosen && chosen.parentElement && chosen.parentElement.disabled) { target.value = ""; }
    });
  }

  document.addEventListener("DOMContentLoaded", function () {
    document.querySelectorAll("select[data-controls-sites]").forEach(function (select) {
      narrow(select);
      select.addEventListener("change", function () { narrow(select); });
    });
  });
})();
