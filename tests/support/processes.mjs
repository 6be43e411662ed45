// The Node tests' child processes (tests/browser, clients/js/test): a program with its output
// kept, a wait for what has no event to await, a free port, and a private redis-server.
import { spawn } from 'node:child_process';
import net from 'node:net';
import path from 'node:path';

// `program` with its standard output and error kept in `child.output`; `child.exited` resolves
// with its exit code.
export function start(program, args) {
  const child = spawn(program, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  child.output = '';
  child.stdout.on('data', (chunk) => { child.output += chunk; });
  child.stderr.on('data', (chunk) => { child.output += chunk; });
  child.exited = new Promise((resolve) => child.on('exit', resolve));
  return child;
}

// Resolves when `probe` does, retrying every 50 ms until `ms` have passed: for what has no
// event to wait for (a process coming up).
export async function eventually(probe, ms, what) {
  const deadline = Date.now() + ms;
  for (;;) {
    try {
      const value = await probe();
      if (value) return value;
    } catch {
      // not yet
    }
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

export function freePort() {
  return new Promise((resolve) => {
    const probe = net.createServer().listen(0, '127.0.0.1', () => {
      const { port } = probe.address();
      probe.close(() => resolve(port));
    });
  });
}

// Debian's redis-server with the project's config, data in `folder`, reached at `socket`;
// resolves once it accepts connections.
export async function startRedis(source, folder, socket) {
  const redis = start('/usr/bin/redis-server', [path.join(source, 'configs/redis.conf'), '--dir', folder,
                                                '--port', '0', '--unixsocket', socket, '--logfile', '',
                                                '--daemonize', 'no']);
  await eventually(() => /eady to accept connections/.test(redis.output), 20_000, 'redis-server');
  return redis;
}
