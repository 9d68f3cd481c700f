// Behaviour of the server's web pages, loaded from this origin (the Content-Security-Policy
// allows no inline script): buttons marked data-print print the page.
document.addEventListener("DOMContentLoaded", () => {
  for (const button of document.querySelectorAll("[data-print]")) {
    button.addEventListener("click", () => window.print());
  }
});
