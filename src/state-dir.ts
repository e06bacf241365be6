import { homedir } from 'node:os';
import { join } from 'node:path';

/** $XDG_STATE_HOME/union-nfsd, falling back to ~/.local/state/union-nfsd (XDG base directory spec). */
export function stateHome(): string {
  const xdg = process.env['XDG_STATE_HOME'];
  return join(xdg !== undefined && xdg.startsWith('/') ? xdg : join(homedir(), '.local', 'state'), 'union-nfsd');
}
