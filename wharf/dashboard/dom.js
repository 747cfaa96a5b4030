// Building the page's elements: attributes and text only (names and log lines are data,
// never markup), and the few kinds of cells the tables use.

export function h(tag, props = {}, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(props)) {
    if (key === "class") el.className = value;
    else if (key === "dataset") Object.assign(el.dataset, value);
    else if (key.startsWith("on")) el.addEventListener(key.slice(2), value);
    else if (value !== undefined && value !== null && value !== false) el.setAttribute(key, value);
  }
  for (const child of children.flat()) {
    if (child !== null && child !== undefined) {
      el.append(child instanceof Node ? child : String(child));
    }
  }
  return el;
}

export const cell = (text, cls = "") => h("td", { class: cls }, text);
export const num = (text, cls = "") => h("td", { class: "num " + cls }, text);
export const badge = (text, tone) => h("span", { class: "badge " + tone }, text);
