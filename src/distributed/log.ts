/**
 * Logging of the distributed processes: human lines on a terminal, one JSON object per line
 * otherwise ({ts, level, component, msg, fields}), so that batch logs can be parsed.
 * TOMORECON_LOG=debug also prints debug lines.
 */
export type Level = 'debug' | 'info' | 'warn' | 'error';
export type Fields = Record<string, unknown>;

export class Logger {
  private readonly json: boolean;
  private readonly debugOn: boolean;

  constructor(
    readonly component: string,
    private readonly stream: NodeJS.WritableStream & { isTTY?: boolean } = process.stderr,
    json?: boolean,
  ) {
    this.json = json ?? !stream.isTTY;
    this.debugOn = process.env.TOMORECON_LOG === 'debug';
  }

  debug(msg: string, fields?: Fields): void {
    if (this.debugOn) this.write('debug', msg, fields);
  }
  info(msg: string, fields?: Fields): void {
    this.write('info', msg, fields);
  }
  warn(msg: string, fields?: Fields): void {
    this.write('warn', msg, fields);
  }
  error(msg: string, fields?: Fields): void {
    this.write('error', msg, fields);
  }

  private write(level: Level, msg: string, fields: Fields = {}): void {
    if (this.json) {
      this.stream.write(JSON.stringify({ ts: new Date().toISOString(), level, component: this.component, msg, fields }, replacer) + '\n');
      return;
    }
    const extra = Object.entries(fields)
      .map(([k, v]) => `${k}=${typeof v === 'string' ? v : JSON.stringify(v, replacer)}`)
      .join(' ');
    const tag = level === 'info' ? '' : `${level}: `;
    this.stream.write(`[${this.component}] ${tag}${msg}${extra ? `  (${extra})` : ''}\n`);
  }
}

function replacer(_k: string, v: unknown): unknown {
  if (ArrayBuffer.isView(v)) return `<${(v as ArrayBufferView).byteLength} bytes>`;
  if (v instanceof Error) return v.message;
  return v;
}

/** CPU time of this process so far (all its threads), seconds, for the last log line of a run. */
export function cpuSeconds(): { cpuUserS: number; cpuSystemS: number } {
  const u = process.cpuUsage();
  return { cpuUserS: +(u.user / 1e6).toFixed(3), cpuSystemS: +(u.system / 1e6).toFixed(3) };
}
