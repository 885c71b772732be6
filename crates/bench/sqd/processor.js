// A minimal SQD squid for ferry-bench's `provider` scenario: RPC ingestion of one contract's
// LogMessageToL2 logs from block 0 to a given head, appended to a CSV file (fsynced per
// batch, as ferry commits durably), then exit. It does less than ferry per message: no hash,
// no index, no reorg window.
//
//   node processor.js <rpc url> <contract> <topic0> <head> <csv path> [requests per second]
'use strict';
const fs = require('fs');
const { EvmBatchProcessor } = require('@subsquid/evm-processor');

const [url, contract, topic, head, out, rateLimit] = process.argv.slice(2);
const endpoint = { url };
if (rateLimit) endpoint.rateLimit = Number(rateLimit);

const processor = new EvmBatchProcessor()
  .setRpcEndpoint(endpoint)
  .setFinalityConfirmation(0)
  .setPrometheusPort(0)
  .setBlockRange({ from: 0, to: Number(head) })
  .setFields({ log: { transactionHash: true, data: true, topics: true } })
  .addLog({ address: [contract.toLowerCase()], topic0: [topic.toLowerCase()] });

const file = fs.openSync(out, 'w');
let rows = 0;
const database = {
  supportsHotBlocks: false,
  async connect() {
    return { height: -1, hash: '0x' };
  },
  async transact(info, handle) {
    await handle(null);
    fs.fsyncSync(file);
  },
};

processor.run(database, async (context) => {
  let lines = '';
  for (const block of context.blocks) {
    for (const log of block.logs) {
      lines += `${block.header.height},${log.logIndex},${log.transactionHash},${log.data}\n`;
      rows += 1;
    }
  }
  fs.writeSync(file, lines);
});

process.on('exit', () => {
  process.stdout.write(JSON.stringify({ rows }) + '\n');
});
