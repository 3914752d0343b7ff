/* Classification wizard: one question at a time, and a live preview from POST /api/v1/classify.
   Without JavaScript every question shows at once and "Preview result" asks the server instead.
   Until every question has been seen, the result says "Not yet answered" (or, once something is ticked,
   that it is provisional) and "Save classification" stays off. */
(function () {
  "use strict";

  var LISTS = ["scope_exclusions", "prohibited_practices", "annex3_uses", "transparency", "role_change"];
  var FLAGS = ["real_world_testing", "profiling", "gpai_model", "gpai_systemic_risk", "gpai_systemic_risk_rebutted",
    "gpai_open_source", "gpai_placed_before_2025_08_02"];
  var PER_USE = "art6_3.";
  var CLASSES = {
    prohibited: "Prohibited",
    high_risk: "High risk",
    limited_risk: "Limited risk",
    minimal_risk: "Minimal risk",
    out_of_scope: "Out of scope"
  };
  var ROLES = {
    provider: "provider",
    deployer: "deployer",
    importer: "importer",
    distributor: "distributor",
    authorised_representative: "authorised representative",
    product_manufacturer: "product manufacturer"
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

  function checkedValues(form, name) {
    return Array.prototype.map.call(form.querySelectorAll('input[name="' + name + '"]:checked'), function (el) { return el.value; });
  }

  // The same answers app/web/routes/wizard.py answers_from() builds from the posted form.
  function answersOf(form) {
    var answers = {};
    LISTS.forEach(function (name) {
      var chosen = checkedValues(form, name);
      if (chosen.length) { answers[name] = chosen; }
    });
    var exception = form.elements.art5_1_h_exception.value;
    if (exception) { answers.art5_1_h_exception = exception; }
    var legislation = form.elements.annex1_legislation.value || null;
    var safety = form.elements.annex1_safety_component.checked;
    var thirdParty = form.elements.annex1_third_party.checked;
    if (legislation || safety || thirdParty) {
      answers.annex1 = { legislation: legislation, safety_component: safety, third_party_conformity_assessment: thirdParty };
    }
    var uses = answers.annex3_uses || [];
    var perUse = {};
    var count = 0;
    uses.forEach(function (use) {
      var conditions = checkedValues(form, PER_USE + use);
      if (conditions.length) { perUse[use] = conditions; count += 1; }
    });
    if (count) { answers.art6_3_conditions = uses.length === 1 ? perUse[uses[0]] : perUse; }
    FLAGS.forEach(function (name) { if (form.elements[name].checked) { answers[name] = true; } });
    var flops = form.elements.gpai_training_flops.value.replace(/[_\s]/g, "");
    if (flops) { answers.gpai_training_flops = isFinite(Number(flops)) ? Number(flops) : flops; }
    return answers;
  }

  function titlesOf(form) {
    var titles = {};
    form.querySelectorAll(".choice input[value]").forEach(function (input) {
      var text = input.parentElement.querySelector(".choice__text > span");
      if (text) { titles[input.value] = text.textContent; }
    });
    ["annex1_legislation", "art5_1_h_exception"].forEach(function (name) {
      Array.prototype.forEach.call(form.elements[name].options, function (opt) {
        if (opt.value) { titles[opt.value] = opt.textContent.replace(/^.* – /, ""); }
      });
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
    if (!items.length) { if (empty) { list.appendChild(item("", empty)); } return; }
    items.forEach(function (li) { list.appendChild(li); });
  }

  function when(o) {
    return (o.in_force ? "binding now" : "from " + o.applies_from) + (o.condition ? "; " + o.condition : "");
  }

  function shareQuery(form) {
    var params = new URLSearchParams();
    Array.prototype.forEach.call(form.elements, function (el) {
      if (!el.name || el.name === "csrf_token" || el.disabled) { return; }
      if (el.type === "checkbox") {
        if (el.checked) { params.append(el.name, el.value && el.value !== "on" ? el.value : "on"); }
      } else if ((el.tagName === "SELECT" || el.type === "text" || el.type === "date") && el.value) {
        params.append(el.name, el.value);
      }
    });
    return params.toString();
  }

  document.addEventListener("DOMContentLoaded", function () {
    var form = document.getElementById("wizard-form");
    if (!form || !window.fetch) { return; }
    var token = document.querySelector('meta[name="csrf-token"]').getAttribute("content");
    var titles = titlesOf(form);
    var share = document.getElementById("share-link");
    var save = form.querySelector("[data-save-button]");
    var saveHint = document.getElementById("save-hint");
    var steps = Array.prototype.slice.call(form.querySelectorAll("fieldset[data-step]"));
    var links = Array.prototype.slice.call(form.querySelectorAll(".steps a"));
    var seen = {};
    var last = null;
    var timer = null;
    var sequence = 0;

    function unseen() {
      return steps.map(function (s, i) { return i + 1; }).filter(function (n) { return !seen[n]; });
    }

    function hasAnswers() { return Object.keys(answersOf(form)).length > 0; }

    // The class line, the progress note and the Save button follow what has been seen and answered.
    function showState() {
      var left = unseen();
      var cls = document.getElementById("result-class");
      var progress = document.getElementById("result-progress");
      if (!last || (left.length && !hasAnswers())) {
        cls.textContent = "Not yet answered";
      } else {
        cls.textContent = CLASSES[last.ai_act_class] || last.ai_act_class;
      }
      cls.hidden = false;
      progress.hidden = !left.length;
      progress.textContent = left.length
        ? (last && hasAnswers() ? "Provisional: " : "") + "question" + (left.length > 1 ? "s " : " ") + left.join(", ") + " not yet seen."
        : "";
      if (save) {
        save.disabled = left.length > 0;
        if (saveHint) { saveHint.hidden = left.length === 0; }
      }
    }

    function render(result) {
      last = result;
      document.getElementById("result-error").hidden = true;
      document.getElementById("result-body").hidden = false;
      var role = document.getElementById("result-role");
      var own = form.getAttribute("data-role");
      role.hidden = false;
      role.textContent = "As " + (ROLES[result.effective_role] || result.effective_role) +
        (result.effective_role !== own ? " (our role: " + (ROLES[own] || own) + ", Art. 25)" : "") + ", as of " + result.as_of;
      fill(document.getElementById("result-basis"), result.basis.map(function (id) {
        return item(cite(id), titles[id] || "");
      }), "No route to a higher class applies.");
      fill(document.getElementById("result-obligations"), result.obligations.map(function (o) {
        return item(cite(o.id), o.title + " (" + when(o) + ")");
      }), "None listed for this role.");
      fill(document.getElementById("result-gpai"), result.gpai_duties.map(function (o) {
        return item(cite(o.id), o.title + " (" + when(o) + ")");
      }), "");
      document.getElementById("result-gpai-block").hidden = !result.gpai_duties.length;
      fill(document.getElementById("result-upcoming"), result.upcoming.map(function (u) {
        return item(cite(u.id), "from " + u.applies_from + ": " + u.title);
      }), "");
      var next = document.getElementById("result-next-change");
      next.hidden = !result.next_change;
      next.textContent = result.next_change
        ? "From " + result.next_change.on + " the class will be " + (CLASSES[result.next_change.ai_act_class] || result.next_change.ai_act_class) + "."
        : "";
      document.getElementById("result-upcoming-block").hidden = !result.upcoming.length;
      document.getElementById("result-rationale").textContent = result.rationale;
      document.getElementById("result-catalog").textContent = "Catalogue " + result.catalog_version;
      showState();
    }

    function showError(message) {
      last = null;
      var el = document.getElementById("result-error");
      el.textContent = message;
      el.hidden = false;
      document.getElementById("result-body").hidden = true;
      document.getElementById("result-role").hidden = true;
      showState();
    }

    function preview() {
      var mine = ++sequence;
      var body = { answers: answersOf(form), ai_act_role: form.getAttribute("data-role") };
      if (form.elements.as_of.value) { body.as_of = form.elements.as_of.value; }
      if (share) { share.href = form.getAttribute("data-share-base") + "?" + shareQuery(form); }
      fetch(form.getAttribute("data-classify-url"), {
        method: "POST",
        credentials: "same-origin",
        headers: { "Content-Type": "application/json", "Accept": "application/json", "X-CSRF-Token": token },
        body: JSON.stringify(body)
      }).then(function (response) {
        return response.json().then(function (data) { return { ok: response.ok, data: data }; });
      }).then(function (reply) {
        if (mine !== sequence) { return; }
        if (reply.ok) { render(reply.data); return; }
        var errors = reply.data.errors || [];
        showError(errors.length ? errors.map(function (e) { return e.msg; }).join(" ") : (reply.data.detail || "The answers could not be classified."));
      }).catch(function () {
        if (mine === sequence) { showError("The preview is unavailable; use “Preview result”."); }
      });
    }

    // Question 5 shows the Art. 6(3) conditions of each use ticked in question 4.
    function showDerogations() {
      var uses = checkedValues(form, "annex3_uses");
      form.querySelectorAll(".derogation[data-use]").forEach(function (group) {
        group.hidden = uses.indexOf(group.getAttribute("data-use")) < 0;
      });
      document.getElementById("derogation-empty").hidden = uses.length > 0;
    }

    function go(n, focus) {
      n = Math.max(1, Math.min(steps.length, n));
      seen[n] = true;
      steps.forEach(function (step, i) { step.classList.toggle("is-current", i === n - 1); });
      links.forEach(function (link, i) {
        if (i === n - 1) { link.setAttribute("aria-current", "step"); } else { link.removeAttribute("aria-current"); }
        link.classList.toggle("is-seen", !!seen[i + 1]);
      });
      if (focus) {
        var legend = steps[n - 1].querySelector("legend");
        legend.setAttribute("tabindex", "-1");
        legend.focus();
      }
      showState();
    }

    if (steps.length) {
      form.classList.add("js-steps");
      links.forEach(function (link, i) {
        link.addEventListener("click", function (event) { event.preventDefault(); go(i + 1, true); });
      });
      form.querySelectorAll("[data-step-go]").forEach(function (button) {
        button.addEventListener("click", function () { go(parseInt(button.getAttribute("data-step-go"), 10), true); });
      });
    }
    form.addEventListener("change", function () {
      showDerogations();
      window.clearTimeout(timer);
      timer = window.setTimeout(preview, 150);
    });
    var previewButton = form.querySelector("[data-preview-button]");
    if (previewButton) { previewButton.hidden = true; }
    showDerogations();
    var fromHash = /^#step-(\d+)$/.exec(window.location.hash);
    go(fromHash ? parseInt(fromHash[1], 10) : 1, false);
    if (hasAnswers() || form.elements.as_of.value) { preview(); }
  });
})();
