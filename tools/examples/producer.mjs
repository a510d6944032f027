#!/usr/bin/env node
//  producer.mjs: writes rows into Quiver through NATS, the two ways a stream processor
//  would: inserts on <prefix>.insert.<collection> (request/reply: the reply comes once
//  the rows are durable), and messages into a JetStream stream that Quiver ingests
//  (quiver serve --ingest-stream NAME), each with a Nats-Msg-Id header so that a retried
//  publish is dropped by JetStream as a duplicate.
//
//  node producer.mjs --nats URL --collection NAME [--prefix quiver] [--dim 8]
//                    [--core-rows 100] [--stream ingest --stream-subject ingest]
//                    [--stream-rows 200] [--batch 50] [--retries 1] [--create-stream]
//
//  --create-stream only creates the stream (subjects <stream-subject>.>, 2-minute
//  duplicate window) and exits: Quiver waits for the stream it ingests to exist.
//  Rows carry no id (the collection assigns them: auto_id) and a "source" field.
//  Prints one JSON line: {"core_ids": [...ids as strings], "stream_published",
//  "stream_duplicates"}.
import { connect, headers } from "@nats-io/transport-node";
import { jetstream, jetstreamManager } from "@nats-io/jetstream";
import { encode, decode } from "@msgpack/msgpack";

function args (argv) {
    const opts = { prefix: "quiver", dim: 8, "core-rows": 100, "stream-rows": 200,
                   batch: 50, retries: 1, stream: "", "stream-subject": "" };
    for (let i = 2; i < argv.length; i++) {
        const key = argv [i].replace (/^--/, "");
        if (key === "create-stream" || key === "help")
            opts [key] = true;
        else
        if (!(key in opts) && !["nats", "collection"].includes (key) || i + 1 >= argv.length)
            throw new Error (`unknown option or missing value: ${argv [i]} (see the head of producer.mjs)`);
        else
            opts [key] = argv [++i];
    }
    for (const k of ["dim", "core-rows", "stream-rows", "batch", "retries"])
        opts [k] = Number (opts [k]);
    return opts;
}

//  n rows of dim float32 values as the protocol's columnar insert: the vector column is
//  one msgpack bin of little-endian float32 values, n x dim.
function columns (first, n, dim, source) {
    const vectors = new Float32Array (n * dim);
    for (let i = 0; i < n * dim; i++)
        vectors [i] = Math.sin (first * dim + i);
    return { columns: { vector: new Uint8Array (vectors.buffer), source: Array (n).fill (source) } };
}

async function main () {
    const opts = args (process.argv);
    if (opts.help || !opts.nats || (!opts.collection && !opts ["create-stream"])) {
        console.error ("usage: node producer.mjs --nats URL --collection NAME [options]; see its head");
        process.exit (2);
    }
    const nc = await connect ({ servers: opts.nats });
    const streamSubject = opts ["stream-subject"] || opts.stream;
    if (opts ["create-stream"]) {
        const jsm = await jetstreamManager (nc);
        await jsm.streams.add ({ name: opts.stream, subjects: [`${streamSubject}.>`],
                                 duplicate_window: 120 * 1e9 });
        console.log (JSON.stringify ({ stream: opts.stream, subjects: [`${streamSubject}.>`] }));
        await nc.close ();
        return;
    }
    //  1. Core NATS request/reply: the reply is the map a ZeroMQ insert returns.
    const core_ids = [];
    for (let first = 0; first < opts ["core-rows"]; first += opts.batch) {
        const n = Math.min (opts.batch, opts ["core-rows"] - first);
        const msg = await nc.request (`${opts.prefix}.insert.${opts.collection}`,
                                      encode (columns (first, n, opts.dim, "core")),
                                      { timeout: 10000 });
        const reply = decode (msg.data, { useBigInt64: true });
        if (!reply.ok)
            throw new Error (`insert refused: ${reply.code}: ${reply.error}`);
        core_ids.push (...reply.ids.map (String));     //  int64 ids may exceed 2^53
    }
    //  2. JetStream: each batch is published with a Nats-Msg-Id; a retry (here on
    //  purpose, --retries times) within the duplicate window is acknowledged by
    //  JetStream as a duplicate and never reaches Quiver twice.
    let published = 0, duplicates = 0;
    if (opts.stream) {
        const js = jetstream (nc);
        for (let first = 0, batch = 0; first < opts ["stream-rows"]; first += opts.batch, batch++) {
            const n = Math.min (opts.batch, opts ["stream-rows"] - first);
            const payload = encode (columns (1e6 + first, n, opts.dim, "stream"));
            const msgID = `${opts.collection}-${batch}`;
            for (let attempt = 0; attempt <= opts.retries; attempt++) {
                const ack = await js.publish (`${streamSubject}.insert.${opts.collection}`,
                                              payload, { msgID });
                if (ack.duplicate)
                    duplicates++;
                else
                    published++;
            }
        }
    }
    console.log (JSON.stringify ({ core_ids, stream_published: published,
                                   stream_duplicates: duplicates }));
    await nc.close ();
}

main ().catch ((e) => { console.error (`producer: ${e.message}`); process.exit (1); });
