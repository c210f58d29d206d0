#!/usr/bin/env node
// An agency's partner client written from proto/ alone (no generated code):
// streams the agency's assignments and works the first one through to resolved.
//
//   node agency_client.js --target 127.0.0.1:50052 --key <agency API key> \
//        --report <report id to wait for> --media-url <photo url> [--timeout 60]
//
// Prints one JSON line per step and exits 0 once the case is resolved.
'use strict';

const path = require('path');
const grpc = require('@grpc/grpc-js');
const protoLoader = require('@grpc/proto-loader');

function args() {
  const out = { timeout: '60' };
  const argv = process.argv.slice(2);
  for (let i = 0; i < argv.length; i += 2) out[argv[i].replace(/^--/, '')] = argv[i + 1];
  for (const required of ['target', 'key', 'report', 'media-url']) {
    if (!out[required]) {
      console.error(`missing --${required}`);
      process.exit(2);
    }
  }
  return out;
}

function say(step, detail) {
  process.stdout.write(JSON.stringify({ step, ...detail }) + '\n');
}

function main() {
  const opts = args();
  const protoRoot = path.resolve(__dirname, '..', '..', 'proto');
  const definition = protoLoader.loadSync('jembatan/v1/cases.proto', {
    includeDirs: [protoRoot],
    keepCase: true,
    longs: Number,
    enums: String,
    defaults: true,
  });
  const { CaseService } = grpc.loadPackageDefinition(definition).jembatan.v1;
  const client = new CaseService(opts.target, grpc.credentials.createInsecure());
  const metadata = new grpc.Metadata();
  metadata.set('authorization', `Bearer ${opts.key}`);
  const deadline = () => new Date(Date.now() + 10000);

  const giveUp = setTimeout(() => {
    say('timeout', { waited_seconds: Number(opts.timeout) });
    process.exit(1);
  }, Number(opts.timeout) * 1000);

  const call = (method, request) =>
    new Promise((resolve, reject) =>
      client[method](request, metadata, { deadline: deadline() }, (err, reply) =>
        err ? reject(err) : resolve(reply)));

  const stream = client.StreamAssignments({ after_event_id: '' }, metadata);
  let working = false;
  stream.on('data', async (assignment) => {
    const c = assignment.case;
    say('assignment', { event_type: assignment.event_type, case_id: c.case_id,
                        report_id: c.report_id, status: c.status });
    if (working || c.report_id !== opts.report) return;
    working = true;
    try {
      let reply = await call('Acknowledge', { case_id: c.case_id, expected_version: c.version,
                                              note: 'Diterima oleh tim lapangan' });
      say('acknowledged', { status: reply.case.status, version: reply.case.version });
      reply = await call('Start', { case_id: c.case_id, expected_version: reply.case.version });
      say('started', { status: reply.case.status, version: reply.case.version });
      reply = await call('Resolve', {
        case_id: c.case_id,
        expected_version: reply.case.version,
        evidence: { note: 'Sudah diperbaiki', media: [{ media_id: 'node-evidence',
          url: opts['media-url'], content_type: 'image/jpeg' }] },
      });
      say('resolved', { status: reply.case.status, version: reply.case.version });
      clearTimeout(giveUp);
      stream.cancel();
      client.close();
      process.exit(reply.case.status === 'CASE_STATUS_RESOLVED' ? 0 : 1);
    } catch (err) {
      say('error', { code: err.code, details: err.details });
      process.exit(1);
    }
  });
  stream.on('error', (err) => {
    if (err.code === grpc.status.CANCELLED) return;
    say('stream_error', { code: err.code, details: err.details });
    process.exit(1);
  });
}

main();
