/**
 * QR code of the join link, drawn as SVG on the host's page so phones in the room can scan their way
 * in. The encoder is the one qrcode-terminal ships (Kazuhiko Arase's QRCode, MIT); this file only
 * wraps it and draws the modules.
 */
// @ts-expect-error CommonJS without types: a constructor (typeNumber, errorCorrectLevel)
import QRCodeImpl from 'qrcode-terminal/vendor/QRCode/index.js';
// @ts-expect-error CommonJS without types: { L, M, Q, H }
import ErrorLevels from 'qrcode-terminal/vendor/QRCode/QRErrorCorrectLevel.js';
import { svg } from './dom.ts';

interface QrImpl {
  addData(data: string): void;
  make(): void;
  getModuleCount(): number;
  isDark(row: number, col: number): boolean;
}

/** The QR modules of `text` (error correction M), row-major: true = dark. */
export function qrMatrix(text: string): boolean[][] {
  const Ctor = QRCodeImpl as new (typeNumber: number, level: number) => QrImpl;
  const qr = new Ctor(-1, (ErrorLevels as { M: number }).M);
  qr.addData(text);
  qr.make();
  const n = qr.getModuleCount();
  return Array.from({ length: n }, (_, r) => Array.from({ length: n }, (_, c) => qr.isDark(r, c)));
}

/** An SVG QR code with the standard 4-module quiet zone; scales to its container. */
export function qrSvg(text: string, label: string): SVGSVGElement {
  const m = qrMatrix(text);
  const n = m.length;
  const quiet = 4;
  let d = '';
  m.forEach((row, r) =>
    row.forEach((dark, c) => {
      if (dark) d += `M${c + quiet},${r + quiet}h1v1h-1z`;
    }),
  );
  return svg(
    'svg',
    {
      viewBox: `0 0 ${n + 2 * quiet} ${n + 2 * quiet}`,
      class: 'qr',
      role: 'img',
      'aria-label': label,
      'shape-rendering': 'crispEdges',
    },
    svg('rect', { width: n + 2 * quiet, height: n + 2 * quiet, fill: '#fff' }),
    svg('path', { d, fill: '#000' }),
  );
}
