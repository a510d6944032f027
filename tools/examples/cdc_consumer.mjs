#!/usr/bin/env node
//  cdc_consumer.mjs: keeps Quiver's change feed (<prefix>.cdc.>) in a JetStream stream
//  and rebuilds a collection's set of live primary keys from it, the way a stream
//  processor would keep a downstream copy in step.
//
//  node cdc_consumer.mjs --nats URL --stream NAME --create [--prefix quiver]
//      creates the stream (subjects <prefix>.cdc.>), to be done before the writes it
//      should capture; Quiver publishes on core NATS, the stream keeps the events.
//  node cdc_consumer.mjs --nats URL --stream NAME --collection C
//      replays the stream from its first message up to its last one (an ordered
//      consumer) and prints {"collection", "ids": [...], "events", "repeats"}; the ids
//      are strings (int64 keys may exceed JavaScript's 2^53), sorted as strings.
//
//  Events are applied in stream order: insert/upsert add `ids`, delete removes them,
//  create_collection/drop_collection empty the set. After a Quiver crash an event may
//  be published again with the same (shard, seq): such repeats are counted and skipped.
//  An event split into parts (part/parts) is applied part by part.
import { connect } from "@nats-io/transport-node";
import { jetstream, jetstreamManager } from "@nats-io/jetstream";
import { decode } from "@msgpack/msgpack";

function args (argv) {
    const opts = { prefix: "quiver" };
    for (let i = 2; i < argv.length; i++) {
        const key = argv [i].replace (/^--/, "");
        if (key === "create")
            opts.create = true;
        else
        if (!["nats", "stream", "collection", "prefix"].includes (key) || i + 1 >= argv.length)
            throw new Error (`unknown option or missing value: ${argv [i]} (see the head of cdc_consumer.mjs)`);
        else
            opts [key] = argv [++i];
    }
    return opts;
}

async function main () {
    const opts = args (process.argv);
    if (!opts.nats || !opts.stream || (!opts.create && !opts.collection)) {
        console.error ("usage: node cdc_consumer.mjs --nats URL --stream NAME (--create | --collection C)");
        process.exit (2);
    }
    const nc = await connect ({ servers: opts.nats });
    const jsm = await jetstreamManager (nc);
    if (opts.create) {
        await jsm.streams.add ({ name: opts.stream, subjects: [`${opts.prefix}.cdc.>`] });
        console.log (JSON.stringify ({ stream: opts.stream, subjects: [`${opts.prefix}.cdc.>`] }));
        await nc.close ();
        return;
    }
    const last = (await jsm.streams.info (opts.stream)).state.last_seq;
    const ids = new Set ();
    const seen = new Set ();               //  "shard/seq/part" already applied
    let events = 0, repeats = 0;
    if (last > 0) {
        const consumer = await jetstream (nc).consumers.get (opts.stream, {
            filter_subjects: `${opts.prefix}.cdc.${opts.collection}` });   //  a string: nats-server 2.9 takes one
        //  The filter may leave fewer messages than the stream holds: read until the
        //  consumer has nothing pending.
        for (let done = false; !done; ) {
            const batch = await consumer.fetch ({ max_messages: 500, expires: 2000 });
            let got = 0;
            for await (const m of batch) {
                got++;
                const ev = decode (m.data, { useBigInt64: true });
                const key = `${ev.shard}/${ev.seq}/${ev.part ?? 0}`;    //  BigInt-safe
                if (seen.has (key)) {
                    repeats++;
                    continue;
                }
                seen.add (key);
                events++;
                //  Keys as strings: int64 ids may exceed 2^53 (they decode as BigInt)
                const keys = (ev.ids ?? []).map (String);
                if (ev.op === "insert" || ev.op === "upsert")
                    keys.forEach ((k) => ids.add (k));
                else
                if (ev.op === "delete")
                    keys.forEach ((k) => ids.delete (k));
                else
                if (ev.op === "create_collection" || ev.op === "drop_collection")
                    ids.clear ();
                if (m.info.pending === 0)
                    done = true;
            }
            if (got === 0)
                done = true;               //  nothing for this collection
        }
    }
    const sorted = [...ids].sort ();
    console.log (JSON.stringify ({ collection: opts.collection, ids: sorted, events, repeats }));
    await nc.close ();
}

main ().catch ((e) => { console.error (`cdc_consumer: ${e.message}`); process.exit (1); });
