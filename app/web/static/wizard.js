/* Classification wizard: one question at a time, and a live preview from POST /api/v1/classify.
   Without JavaScript every question shows at once and "Preview result" asks the server instead. */
(function () {
  "use strict";

  var LISTS = ["prohibited_practices", "annex3_uses", "art6_3_conditions", "transparency"];
  var FLAGS = ["profiling", "gpai_model", "gpai_systemic_risk"];
  var CLASSES = {
    prohibited: "Prohibited",
    high_risk: "High risk",
    limited_risk: "Limited risk",
    minimal_risk: "Minimal risk"
  };

  // "art5.1.f" -> "Art. 5(1)(f)", "annex3.4.a" -> "Annex III point 4(a)" (as app.classification.catalog.cite).
  function cite(id) {
    var m = /^(art|annex)(\d+)((?:\.[0-9a-z]+)*)$/.exec(id);
    if (!m) { return id; }
    var rest = m[3].split(".").filter(Boolean);
    if (m[1] === "art") {
      return "Art. " + m[2] + rest.map(function (x) { return "(" + x + ")"; }).join("");
    }
    if (m[2] === "1" && rest.length === 2) { return "Annex I Section " + rest[0].toUpperCase() + " point " + rest[1]; }
    var roman = { "1": "I", "2": "II", "3": "III", "4": "IV" }[m[2]] || m[2];
    if (!rest.length) { return "Annex " + roman; }
    return "Annex " + roman + " point " + rest[0] + rest.slice(1).map(function (x) { return "(" + x + ")"; }).join("");
  }

  function answersOf(form) {
    var answers = {};
    LISTS.forEach(function (name) {
      var chosen = Array.prototype.map.call(form.querySelectorAll('input[name="' + name + '"]:checked'), function (el) { return el.value; });
      if (chosen.length) { answers[name] = chosen; }
    });
    var legislation = form.elements.annex1_legislation.value || null;
    var safety = form.elements.annex1_safety_component.checked;
    var thirdParty = form.elements.annex1_third_party.checked;
    if (legislation || safety || thirdParty) {
      answers.annex1 = { legislation: legislation, safety_component: safety, third_party_conformity_assessment: thirdParty };
    }
    FLAGS.forEach(function (name) { if (form.elements[name].checked) { answers[name] = true; } });
    return answers;
  }

  function titlesOf(form) {
    var titles = {};
    form.querySelectorAll(".choice input[value]").forEach(function (input) {
      var text = input.parentElement.querySelector(".choice__text > span");
      if (text) { titles[input.value] = text.textContent; }
    });
    Array.prototype.forEach.call(form.elements.annex1_legislation.options, function (opt) {
      if (opt.value) { titles[opt.value] = opt.textContent; }
    });
    return titles;
  }

  function item(strong, rest) {
    var li = document.createElement("li");
    var b = document.createElement("strong");
    b.textContent = strong;
    li.appendChild(b);
    if (rest) { li.appendChild(document.createTextNode(" " + rest)); }
    return li;
  }

  function fill(list, items, empty) {
    list.textContent = "";
    if (!items.length) { list.appendChild(item("", empty)); return; }
    items.forEach(function (li) { list.appendChild(li); });
  }

  function render(result, titles) {
    document.getElementById("result-hint").hidden = true;
    document.getElementById("result-error").hidden = true;
    document.getElementById("result-body").hidden = false;
    var cls = document.getElementById("result-class");
    cls.hidden = false;
    cls.textContent = CLASSES[result.ai_act_class] || result.ai_act_class;
    fill(document.getElementById("result-basis"), result.basis.map(function (id) {
      return item(cite(id), titles[id] || "");
    }), "No route to a higher class applies.");
    fill(document.getElementById("result-obligations"), result.obligations.map(function (o) {
      return item(cite(o.id), o.title + " (" + (o.in_force ? "binding now" : "from " + o.applies_from) + ")");
    }), "None listed for this role.");
    document.getElementById("result-rationale").textContent = result.rationale;
    document.getElementById("result-catalog").textContent = "Catalogue " + result.catalog_version;
  }

  function showError(message) {
    var el = document.getElementById("result-error");
    el.textContent = message;
    el.hidden = false;
    document.getElementById("result-body").hidden = true;
    document.getElementById("result-class").hidden = true;
  }

  function shareQuery(form) {
    var params = new URLSearchParams();
    Array.prototype.forEach.call(form.elements, function (el) {
      if (!el.name || el.name === "csrf_token") { return; }
      if ((el.type === "checkbox" && el.checked) || (el.tagName === "SELECT" && el.value)) {
        params.append(el.name, el.type === "checkbox" && !el.value ? "on" : el.value);
      }
    });
    return params.toString();
  }

  function setupSteps(form) {
    var steps = Array.prototype.slice.call(form.querySelectorAll("fieldset[data-step]"));
    var links = Array.prototype.slice.call(form.querySelectorAll(".steps a"));
    if (!steps.length) { return; }
    form.classList.add("js-steps");
    function go(n, focus) {
      n = Math.max(1, Math.min(steps.length, n));
      steps.forEach(function (step, i) { step.classList.toggle("is-current", i === n - 1); });
      links.forEach(function (link, i) {
        if (i === n - 1) { link.setAttribute("aria-current", "step"); } else { link.removeAttribute("aria-current"); }
      });
      if (focus) {
        var legend = steps[n - 1].querySelector("legend");
        legend.setAttribute("tabindex", "-1");
        legend.focus();
      }
    }
    links.forEach(function (link, i) {
      link.addEventListener("click", function (event) { event.preventDefault(); go(i + 1, true); });
    });
    form.querySelectorAll("[data-step-go]").forEach(function (button) {
      button.addEventListener("click", function () { go(parseInt(button.getAttribute("data-step-go"), 10), true); });
    });
    var fromHash = /^#step-(\d+)$/.exec(window.location.hash);
    go(fromHash ? parseInt(fromHash[1], 10) : 1, false);
  }

  document.addEventListener("DOMContentLoaded", function () {
    var form = document.getElementById("wizard-form");
    if (!form || !window.fetch) { return; }
    var token = document.querySelector('meta[name="csrf-token"]').getAttribute("content");
    var titles = titlesOf(form);
    var share = document.getElementById("share-link");
    var timer = null;
    var sequence = 0;

    function preview() {
      var mine = ++sequence;
      var body = JSON.stringify({ answers: answersOf(form), ai_act_role: form.getAttribute("data-role") });
      if (share) { share.href = form.getAttribute("data-share-base") + "?" + shareQuery(form); }
      fetch(form.getAttribute("data-classify-url"), {
        method: "POST",
        credentials: "same-origin",
        headers: { "Content-Type": "application/json", "Accept": "application/json", "X-CSRF-Token": token },
        body: body
      }).then(function (response) {
        return response.json().then(function (data) { return { ok: response.ok, data: data }; });
      }).then(function (reply) {
        if (mine !== sequence) { return; }
        if (reply.ok) { render(reply.data, titles); return; }
        var errors = reply.data.errors || [];
        showError(errors.length ? errors.map(function (e) { return e.msg; }).join(" ") : (reply.data.detail || "The answers could not be classified."));
      }).catch(function () {
        if (mine === sequence) { showError("The preview is unavailable; use “Preview result”."); }
      });
    }

    setupSteps(form);
    form.addEventListener("change", function () {
      window.clearTimeout(timer);
      timer = window.setTimeout(preview, 150);
    });
    var previewButton = form.querySelector("[data-preview-button]");
    if (previewButton) { previewButton.hidden = true; }
    preview();
  });
})();
