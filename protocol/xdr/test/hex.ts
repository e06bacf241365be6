/**
 * Annotated hex for byte fixtures: hex digits with `#` comments to the end of the line, so a
 * fixture reads like the RFC's layout and a wrong byte is easy to spot.
 */
export function hex(text: string): Buffer {
  const digits = text.replace(/#.*$/gm, '').replace(/\s+/g, '');
  if (!/^(?:[0-9a-fA-F]{2})*$/.test(digits)) throw new Error(`bad annotated hex: ${digits}`);
  return Buffer.from(digits, 'hex');
}
