/**
 * The relay an SSH channel may start on the login node. sshd's `GatewayPorts` defaults to `no`, so a reverse
 * forward listens on the login node's loopback only, where compute nodes cannot reach it. The relay listens
 * on an address compute nodes can reach and passes bytes to the forwarded loopback port. It is a Python 3
 * program (present on practically every login node, unlike Node outside `module load`), and it exits when
 * its standard input closes, i.e. when the SSH session that started it ends.
 */

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
