// Keyboard: j/k move between pairs, a/r/n decide the focused one (the form posts, so the
// page also works without this script).
(function () {
  const pairs = Array.from(document.querySelectorAll(".pair"));
  if (!pairs.length) return;
  let current = Math.max(0, pairs.findIndex((p) => "#" + p.id === location.hash));
  function show(i) {
    current = Math.min(Math.max(i, 0), pairs.length - 1);
    pairs.forEach((p, j) => p.classList.toggle("focus", j === current));
    pairs[current].focus({ preventScroll: true });
    pairs[current].scrollIntoView({ block: "start", behavior: "smooth" });
  }
  show(current);
  document.addEventListener("keydown", (ev) => {
    if (ev.ctrlKey || ev.metaKey || ev.altKey) return;
    if (/^(INPUT|TEXTAREA|SELECT)$/.test(ev.target.tagName)) return;
    const key = ev.key.toLowerCase();
    if (key === "j") { show(current + 1); ev.preventDefault(); return; }
    if (key === "k") { show(current - 1); ev.preventDefault(); return; }
    const button = pairs[current].querySelector('button[data-key="' + key + '"]');
    if (button) { ev.preventDefault(); button.click(); }
  });
})();
