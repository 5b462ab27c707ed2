/** A QR code of the join URL for the terminal, so a phone can scan its way in. */
import { createRequire } from 'node:module';

interface QrcodeTerminal {
  generate(input: string, options: { small: boolean }, callback: (text: string) => void): void;
}

// qrcode-terminal is CommonJS without types; this is its whole API as used here.
const qrcode = createRequire(import.meta.url)('qrcode-terminal') as QrcodeTerminal;

/** The QR code as text (half-block characters, two modules per character row). */
export function qrText(url: string): string {
  let out = '';
  qrcode.generate(url, { small: true }, (text) => {
    out = text;
  });
  return out;
}
