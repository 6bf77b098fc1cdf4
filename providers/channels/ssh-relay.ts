/**
 * The relay an SSH channel may start on the login node. sshd's `GatewayPorts` defaults to `no`, so a reverse
 * forward listens on the login node's loopback only, where compute nodes cannot reach it. The relay listens
 * on an address compute nodes can reach and passes bytes to the forwarded loopback port. It is a Python 3
 * program (present on practically every login node, unlike Node outside `module load`), and it exits when
 * its standard input closes, i.e. when the SSH session that started it ends.
 */
import type { Client as SSHClient } from 'ssh2';
import { FuncxError } from '../../src/errors.js';

/** The relay program: argv = listen address, listen port (0: any), target loopback port. Prints its port. */
export const RELAY_PROGRAM = `
import os, socket, sys, threading
addr, port, target = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
srv = socket.socket(socket.AF_INET6 if ':' in addr else socket.AF_INET)
srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
srv.bind((addr, port))
srv.listen(128)
print(srv.getsockname()[1], flush=True)
def pump(src, dst, done):
    try:
        while True:
            data = src.recv(65536)
            if not data:
                break
            dst.sendall(data)
    except OSError:
        pass
    try:
        dst.shutdown(socket.SHUT_WR)
    except OSError:
        pass
    if done.acquire(blocking=False) is False:
        src.close()
        dst.close()
def serve(client):
    try:
        upstream = socket.create_connection(('127.0.0.1', target))
    except OSError:
        client.close()
        return
    done = threading.Semaphore(1)
    for a, b in ((client, upstream), (upstream, client)):
        threading.Thread(target=pump, args=(a, b, done), daemon=True).start()
def watch():
    sys.stdin.read()
    os._exit(0)
threading.Thread(target=watch, daemon=True).start()
while True:
    conn, _ = srv.accept()
    serve(conn)
`;

/** Single-quote a word for /bin/sh. */
export function shQuote(word: string): string {
  return `'${word.replace(/'/g, `'\\''`)}'`;
}

/** The shell line that starts the relay (python3, or python when python3 is missing). */
export function relayCommand(listenAddress: string, listenPort: number, targetPort: number): string {
  const args = [shQuote(listenAddress), String(listenPort), String(targetPort)].join(' ');
  const prog = shQuote(RELAY_PROGRAM);
  return `if command -v python3 >/dev/null 2>&1; then exec python3 -u -c ${prog} ${args}; else exec python -u -c ${prog} ${args}; fi`;
}

/** Where the relay listens and what it reaches. */
export interface RelaySpec {
  /** Address on the login node that compute nodes can reach. */
  address: string;
  /** Port to listen on; 0 lets the login node pick (the first time), the same port again after a reconnect. */
  port: number;
  /** The reverse-forwarded loopback port on the login node. */
  targetPort: number;
  /** user@host:port, for messages. */
  target: string;
}

/**
 * Start the relay over its own SSH session; resolves with the port it listens on once it says so.
 * `onStop` is called if it stops later (the session ended or the program died).
 */
export function startRelay(client: SSHClient, spec: RelaySpec, onStop: (why: string) => void): Promise<{ port: number }> {
  const cmd = relayCommand(spec.address, spec.port, spec.targetPort);
  return new Promise((resolve, reject) => {
    client.exec(`exec /bin/sh -c ${shQuote(cmd)}`, (err, ch) => {
      if (err) return reject(new FuncxError('SSH_CONNECT', `${spec.target}: cannot start the relay: ${err.message}`));
      let out = '';
      let errText = '';
      let started = false;
      ch.setEncoding('utf8');
      ch.stderr.setEncoding('utf8');
      ch.stderr.on('data', (d: string) => (errText += d));
      ch.on('data', (d: string) => {
        out += d;
        const m = /^(\d+)\n/.exec(out);
        if (m && !started) {
          started = true;
          resolve({ port: Number(m[1]) });
        }
      });
      ch.on('close', () => {
        const why = errText.trim() || 'no output';
        if (!started) reject(new FuncxError('SSH_CONNECT', `${spec.target}: the relay on ${spec.address} did not start: ${why}`));
        else onStop(why);
      });
    });
  });
}
