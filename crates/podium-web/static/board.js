// Progressive enhancement only: every page works without this script.
// Selects marked data-autosubmit submit their form when changed.
document.addEventListener("DOMContentLoaded", function () {
  document.querySelectorAll("select[data-autosubmit]").forEach(function (select) {
    select.addEventListener("change", function () {
      if (select.form) {
        select.form.submit();
      }
    });
  });
});
