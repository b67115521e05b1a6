/* dunwell console: a small script, served by the API (no CDN, no build step).
 *  - forms marked data-partial are sent in the background and the page's <main> is swapped for
 *    the answer's (the same page the server would show without this script);
 *  - filters marked data-autosubmit apply as they change;
 *  - the plan builder splits the outstanding amount and checks the sum as you type;
 *  - sections marked data-refresh follow an import's progress.
 * Without the script every form still works as a plain HTML form. */
(function () {
  "use strict";

  function swapMain(html, url) {
    var doc = new DOMParser().parseFromString(html, "text/html");
    var fresh = doc.querySelector("main");
    var main = document.querySelector("main");
    if (!fresh || !main) { window.location.assign(url); return; }
    main.replaceWith(fresh);
    if (doc.title) { document.title = doc.title; }
    if (url && url !== window.location.href) { window.history.replaceState(null, "", url); }
    enhance(fresh);
    var alert = fresh.querySelector("[role=alert], [role=status]");
    (alert || fresh).setAttribute("tabindex", "-1");
    (alert || fresh).focus();
  }

  function partial(form) {
    form.addEventListener("submit", function (event) {
      event.preventDefault();
      var data = new FormData(form);
      if (event.submitter && event.submitter.name) {
        data.append(event.submitter.name, event.submitter.value);
      }
      form.setAttribute("data-busy", "");
      fetch(form.action, { method: "POST", body: data, credentials: "same-origin" })
        .then(function (response) {
          return response.text().then(function (html) { swapMain(html, response.url); });
        })
        .catch(function () { form.removeAttribute("data-busy"); form.submit(); });
    });
  }

  function autosubmit(form) {
    form.querySelectorAll("select, input[type=checkbox]").forEach(function (field) {
      field.addEventListener("change", function () { form.requestSubmit(); });
    });
  }

  function cents(text, precision) {
    var value = String(text || "").trim().replace(/\s/g, "").replace(",", ".");
    if (!/^\d+(\.\d+)?$/.test(value)) { return null; }
    var parts = value.split(".");
    if (parts[1] && parts[1].length > precision) { return null; }
    var fraction = (parts[1] || "").padEnd(precision, "0");
    return parseInt(parts[0], 10) * Math.pow(10, precision) + (fraction ? parseInt(fraction, 10) : 0);
  }

  function planBuilder(form) {
    var precision = parseInt(form.dataset.precision, 10);
    var scale = Math.pow(10, precision);
    var outstanding = cents(form.dataset.outstanding, precision);
    var money = new Intl.NumberFormat(form.dataset.lang, { style: "currency", currency: form.dataset.currency });
    var lines = form.querySelector("[data-lines]");
    var sum = form.querySelector("[data-sum]");
    var count = form.querySelector("[name=count]");
    var first = form.querySelector("[name=first_due]");
    var every = form.querySelector("[name=every]");

    function show(amount) { return money.format(amount / scale); }
    function fixed(amount) { return (amount / scale).toFixed(precision); }

    function check() {
      var total = 0, valid = true;
      lines.querySelectorAll("input[name='amount[]']").forEach(function (input) {
        var value = cents(input.value, precision);
        if (value === null) { valid = false; } else { total += value; }
      });
      var ok = valid && total === outstanding;
      sum.className = "sum " + (ok ? "ok" : "off");
      sum.textContent = ok ? form.dataset.sumOk : form.dataset.sumOff
        .replace("{total}", show(total)).replace("{outstanding}", show(outstanding))
        .replace("{difference}", show(total - outstanding));
    }

    function rebuild() {
      var n = Math.max(1, Math.min(120, parseInt(count.value, 10) || 1));
      var start = first.value ? new Date(first.value + "T00:00:00Z") : null;
      var gap = Math.max(1, parseInt(every.value, 10) || 30);
      var part = Math.floor(outstanding / n);
      var template = lines.querySelector("tr");
      var rows = [];
      for (var i = 0; i < n; i++) {
        var row = template.cloneNode(true);
        row.querySelectorAll(".field-error").forEach(function (e) { e.remove(); });
        row.querySelector("th").textContent = String(i + 1);
        var due = row.querySelector("input[name='due_on[]']");
        var amount = row.querySelector("input[name='amount[]']");
        var label = form.dataset.line.replace("{number}", String(i + 1));
        due.setAttribute("aria-label", label + due.getAttribute("aria-label").replace(/^[^:]*/, ""));
        amount.setAttribute("aria-label", label + amount.getAttribute("aria-label").replace(/^[^:]*/, ""));
        due.removeAttribute("aria-invalid");
        amount.removeAttribute("aria-invalid");
        if (start) {
          var day = new Date(start.getTime() + i * gap * 86400000);
          due.value = day.toISOString().slice(0, 10);
        }
        amount.value = fixed(i === n - 1 ? outstanding - part * (n - 1) : part);
        rows.push(row);
      }
      lines.replaceChildren.apply(lines, rows);
      check();
    }

    [count, first, every].forEach(function (field) { field.addEventListener("change", rebuild); });
    var split = form.querySelector("[data-split]");
    if (split) {
      split.addEventListener("click", function (event) { event.preventDefault(); rebuild(); });
    }
    lines.addEventListener("input", check);
    check();
  }

  function follow(section) {
    var every = parseInt(section.dataset.refresh, 10) || 1000;
    window.setTimeout(function () {
      fetch(window.location.href, { credentials: "same-origin" })
        .then(function (response) { return response.text(); })
        .then(function (html) {
          var doc = new DOMParser().parseFromString(html, "text/html");
          var fresh = doc.querySelector("section.import");
          if (!fresh) { return; }
          section.replaceWith(fresh);
          if (fresh.dataset.refresh) { follow(fresh); }
        })
        .catch(function () { follow(section); });
    }, every);
  }

  function enhance(root) {
    root.querySelectorAll("form[data-partial]").forEach(partial);
    root.querySelectorAll("form[data-autosubmit]").forEach(autosubmit);
    root.querySelectorAll("form[data-plan-builder]").forEach(planBuilder);
    root.querySelectorAll("[data-refresh]").forEach(follow);
  }

  document.addEventListener("DOMContentLoaded", function () { enhance(document); });
})();
