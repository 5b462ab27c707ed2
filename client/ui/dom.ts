/** A tiny DOM builder: h('div.card', {onclick}, child, ...). Text children are escaped by the DOM. */

type Child = Node | string | number | null | undefined | false;
type Attrs = Record<string, string | number | boolean | EventListener | null | undefined>;

/** Elements given a listener by h(): update() never keeps an old one in their place (its listener may differ). */
const listening = new WeakSet<Element>();

export function h<K extends keyof HTMLElementTagNameMap>(
  tagAndClasses: K | `${K}.${string}` | `${K}#${string}`,
  attrs: Attrs = {},
  ...children: (Child | Child[])[]
): HTMLElementTagNameMap[K] {
  const [tagAndId, ...classes] = tagAndClasses.split('.');
  const [tag, id] = tagAndId.split('#');
  const el = document.createElement(tag as K);
  if (id) el.id = id;
  if (classes.length) el.className = classes.join(' ');
  for (const [key, value] of Object.entries(attrs)) {
    if (value === null || value === undefined || value === false) continue;
    if (key.startsWith('on') && typeof value === 'function') {
      el.addEventListener(key.slice(2), value);
      listening.add(el);
    } else if (value === true) el.setAttribute(key, '');
    else el.setAttribute(key, String(value));
  }
  append(el, children);
  return el;
}

function append(el: Element, children: (Child | Child[])[]): void {
  for (const c of children) {
    if (Array.isArray(c)) append(el, c);
    else if (c === null || c === undefined || c === false) continue;
    else el.append(c instanceof Node ? c : String(c));
  }
}

/** Replaces an element's children (the new ones are the nodes given, never an old one kept). */
export function fill(el: Element, ...children: (Child | Child[])[]): void {
  el.replaceChildren();
  append(el, children);
}

/**
 * Makes an element's children equal to the given ones, keeping the old nodes where it can: an old child
 * with the new one's tag stays, and only its text, attributes and children change (recursively). A render
 * that re-builds a card whose content is mostly the same then dirties only what changed; replacing every
 * child had the browser lay out most of the page again (in a traced cold request on a 0.4-core lab
 * device, ~440 of ~735 layout objects dirty; 313 with update). The given nodes are templates, for content
 * built afresh on each render: update may move their children into the old nodes and leave them behind,
 * so a node the caller keeps for later must not be passed (mount such nodes with fill).
 */
export function update(el: Element, ...children: (Child | Child[])[]): void {
  const next: Node[] = [];
  flatten(children, next);
  reconcile(el, next);
}

function flatten(children: (Child | Child[])[], out: Node[]): void {
  for (const c of children) {
    if (Array.isArray(c)) flatten(c, out);
    else if (c === null || c === undefined || c === false) continue;
    // a fragment inserts its children, one index each
    else if (c instanceof DocumentFragment) out.push(...Array.from(c.childNodes));
    else out.push(c instanceof Node ? c : document.createTextNode(String(c)));
  }
}

function reconcile(el: Element, next: readonly Node[]): void {
  for (let i = 0; i < next.length; i++) {
    const old = i < el.childNodes.length ? el.childNodes[i] : null;
    const node = next[i];
    if (!old) el.append(node);
    else if (old !== node && !patch(old, node)) old.replaceWith(node);
  }
  while (el.childNodes.length > next.length) el.lastChild!.remove();
}

/**
 * Elements whose state is more than their attributes and children (pixels, a value typed in, a frame, a
 * modal state): never kept in a new one's place; nor are custom elements or elements with a shadow root.
 */
const OPAQUE = new Set([
  'CANVAS',
  'INPUT',
  'TEXTAREA',
  'SELECT',
  'OPTION',
  'IFRAME',
  'VIDEO',
  'AUDIO',
  'OBJECT',
  'EMBED',
  'DIALOG',
]);

const opaque = (el: Element) => OPAQUE.has(el.tagName) || el.tagName.includes('-') || el.shadowRoot !== null;

/** Turns `old` into a copy of `node` in place; false where it cannot (other kind, tag or a listener). */
function patch(old: Node, node: Node): boolean {
  if (old.nodeType === Node.TEXT_NODE && node.nodeType === Node.TEXT_NODE) {
    const text = (node as Text).data;
    if ((old as Text).data !== text) (old as Text).data = text;
    return true;
  }
  if (!(old instanceof Element) || !(node instanceof Element)) return false;
  if (old.namespaceURI !== node.namespaceURI || old.tagName !== node.tagName || opaque(old)) return false;
  if (listening.has(old) || listening.has(node)) return false;
  // by qualified name, as h() and svg() set them
  for (const name of old.getAttributeNames()) if (!node.hasAttribute(name)) old.removeAttribute(name);
  for (const name of node.getAttributeNames()) {
    const value = node.getAttribute(name)!;
    if (old.getAttribute(name) !== value) old.setAttribute(name, value);
  }
  reconcile(old, Array.from(node.childNodes));
  return true;
}

const SVG_NS = 'http://www.w3.org/2000/svg';

export function svg<K extends keyof SVGElementTagNameMap>(
  tag: K,
  attrs: Record<string, string | number> = {},
  ...children: (SVGElement | string)[]
): SVGElementTagNameMap[K] {
  const el = document.createElementNS(SVG_NS, tag);
  for (const [k, v] of Object.entries(attrs)) el.setAttribute(k, String(v));
  for (const c of children) el.append(c);
  return el;
}
