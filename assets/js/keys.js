() => {
  // Preferences tab keys: 1 A better, 2 B better, 3 tie, 4 both bad, s skip, e rewrite the winner;
  // Escape leaves a text box so that the keys work again. Ignored while typing and on other tabs.
  const buttons = { "1": "prefs-a", "2": "prefs-b", "3": "prefs-tie", "4": "prefs-bad", "s": "prefs-skip" };
  document.addEventListener("keydown", (event) => {
    if (event.ctrlKey || event.metaKey || event.altKey) return;
    const target = event.target;
    const typing = target && (target.tagName === "TEXTAREA" || target.tagName === "INPUT" || target.isContentEditable);
    if (typing) {
      if (event.key === "Escape") target.blur();
      return;
    }
    const first = document.getElementById("prefs-a");
    if (!first || first.offsetParent === null) return;
    if (event.key === "e") {
      const box = document.querySelector("#prefs-edit textarea");
      if (box) { event.preventDefault(); box.focus(); }
      return;
    }
    const id = buttons[event.key];
    if (id) {
      event.preventDefault();
      document.getElementById(id).click();
    }
  });
}
