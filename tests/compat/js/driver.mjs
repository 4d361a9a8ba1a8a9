// Drives one official ConvexClient (npm `convex`) from line-delimited JSON commands on stdin and
// reports what the client sees as JSON lines on stdout. Used by tests/compat/test_js_client.py.
import { ConvexClient } from "convex/browser";
import readline from "node:readline";

const url = process.argv[2];
const client = new ConvexClient(url, { logger: false });
const subs = new Map();

const replacer = (_k, v) => (typeof v === "bigint" ? { $bigint: v.toString() } : v);
const emit = (ev) => process.stdout.write(JSON.stringify(ev, replacer) + "\n");

client.onConnectionStateChange?.((state) =>
  emit({ ev: "connection", isWebSocketConnected: state.isWebSocketConnected, retries: state.connectionRetries }),
);

const rl = readline.createInterface({ input: process.stdin });
rl.on("line", async (line) => {
  const cmd = JSON.parse(line);
  try {
    switch (cmd.op) {
      case "subscribe": {
        const unsub = client.onUpdate(
          cmd.fn,
          cmd.args,
          (value) => emit({ ev: "update", id: cmd.id, value }),
          (err) => emit({ ev: "queryError", id: cmd.id, message: String(err.message ?? err), data: err.data ?? null }),
        );
        subs.set(cmd.id, unsub);
        break;
      }
      case "unsubscribe":
        subs.get(cmd.id)?.();
        subs.delete(cmd.id);
        break;
      case "mutation":
        client.mutation(cmd.fn, cmd.args).then(
          (value) => emit({ ev: "result", rid: cmd.rid, ok: true, value }),
          (err) => emit({ ev: "result", rid: cmd.rid, ok: false, message: String(err.message ?? err), data: err.data ?? null }),
        );
        break;
      case "query": {
        const value = await client.query(cmd.fn, cmd.args);
        emit({ ev: "result", rid: cmd.rid, ok: true, value });
        break;
      }
      case "setAuth":
        client.setAuth(
          async () => cmd.token,
          (isAuthenticated) => emit({ ev: "auth", isAuthenticated }),
        );
        break;
      case "close":
        await client.close();
        emit({ ev: "closed" });
        process.exit(0);
    }
  } catch (err) {
    emit({ ev: "error", op: cmd.op, rid: cmd.rid, message: String(err?.message ?? err) });
  }
});
emit({ ev: "ready" });
