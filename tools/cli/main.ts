// pop-llm: the command line. It serves the project with Vite, runs cli.html in headless
// chromium (WebGPU) and drives the same engine a tab runs. Errors print one line with their
// PopError code and exit 1.
import { parseArgs } from './args.ts';
import { parseBench, QUALITY_TEXT, runBench, runPopQuality } from './bench.ts';
import { parseVsWebllm, runVsWebllm } from './vs_webllm.ts';
import { readFileSync } from 'node:fs';
import { parseGenerate, runGenerate } from './generate.ts';
import { parseCalibrate, runCalibrate } from './calibrate.ts';
import { CliError, Session } from './session.ts';
import { HOSTS, type Host } from '../node/node_host.ts';
import { InvalidArgumentError, UnsupportedFeatureError } from '../../src/errors.ts';

const USAGE = `usage:
  pop-llm generate [--model <dir|url|random:<config-dir>>] (--prompt TEXT | --ids 1,2,3) [--max-tokens N]
                   [--temperature T] [--top-p P] [--top-k K] [--seed S] [--pop off|exact|auto|<keep>|<ratio>]
                   [--pop-ratio R] [--context N] [--ignore-eos] [--json]
  pop-llm bench    [--model <dir|url|random:<config-dir>>] [--prompt-tokens 128,512] [--pop off,exact,2/3]
                   [--max-tokens 4] [--context N] [--seed S] [--repeat N] [--gemm] [--quant none|q4|q4-asym] [--kv-dtype auto|f32|f16] [--json]
  pop-llm bench --pop [--prompt-tokens ...] [--json]   (the POP suite: SmolLM2-135M and Qwen3-0.6B shapes,
                   off vs exact vs 2/3, plus first-token KL and greedy agreement on stories260K)

  pop-llm bench --vs-webllm [--prompt-tokens 32] [--max-tokens 2] [--pop off,exact] [--timeout-s 900] [--json]
                   (WebLLM 0.2.79 and pop-llm on one random q4f32_1 Qwen2.5-0.5B folder in MLC layout,
                   written once to .cache/webllm-qwen2-q4f32_1: TTFT, prefill/decode tok/s, greedy ids,
                   pop-llm's GPU bytes vs 1.25 x (shards + KV + 64 MB); --timeout-s: each page's budget)

  pop-llm calibrate [--model <dir|url|random:<config-dir>>] --text FILE [--image FILE ...] [--budget NATS]
                   [--context N] [--continuation N] [--json]

  --model defaults to public/models/stories260K; bench without --model runs stories260K and
  random:configs/HuggingFaceTB__SmolLM2-135M-Instruct and adds the GEMM lines (--gemm: the
  prefill matmul alone on the model's shapes, and the whole prefill's GFLOP/s against it).
  A VLM (e.g. random:configs/HuggingFaceTB__SmolVLM-256M-Instruct, also in the default run)
  adds image+text prompt rows: TTFT per POP setting for one --image-size WxH test image (default 512x512)
  resized to at most --image-edge px (default 512: one tile); the tower runs once and is added to each
  setting's prefill, or runs in every setting with --image-full.
  calibrate --image FILE (repeatable, VLMs): image i is paired with the text's i-th paragraph (or i-th
  equal part); the loss is measured on the text after the image.
  Each bench model prints its memory after load: GPU bytes (weights, KV cache, scratch; peak) and the
  page's peak JS heap during load (ArrayBuffers included); --quant loads int4 weights; --kv-dtype f16 stores the KV cache in halves.
  --host chromium|node (generate, bench, calibrate): chromium (default) runs the page in headless Chromium;
  node runs the same engine in a Node process on the npm 'webgpu' package (Dawn over the machine's Vulkan
  driver; POP_LLM_WEBGPU_ADAPTER=swiftshader: Chromium's SwiftShader ICD). Where Dawn cannot start it ends
  with NO_WEBGPU; a crash or hang of Dawn ends with GPU_PROCESS_CRASHED naming the shader or call it died in.
  POP_LLM_WEBGPU_ADAPTER=default lets Chromium use the machine's GPU (bench/gpu.sh); default SwiftShader.
  --repeat N reports the fastest of N runs (this machine's timings are noisy). POP_LLM_DEBUG=1 shows the page's console.
`;

const BOOLEANS = new Set(['json', 'ignore-eos', 'gemm', 'help', 'pop-suite', 'image-full', 'vs-webllm']);

/** `bench --pop` with no value selects the POP suite. */
function bareBenchPop(argv: string[]): string[] {
  if (argv[0] !== 'bench') return argv;
  return argv.map((a, i) => (a === '--pop' && (i + 1 >= argv.length || argv[i + 1].startsWith('--')) ? '--pop-suite' : a));
}

async function main(argv: string[]): Promise<number> {
  let json = argv.includes('--json');
  let session: Session | null = null;
  const onSignal = () => {
    void session?.close().finally(() => process.exit(130));
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  try {
    const p = parseArgs(bareBenchPop(argv), BOOLEANS);
    json = p.flags.has('json');
    if (p.command === null || p.command === 'help' || p.flags.has('help')) {
      process.stdout.write(USAGE);
      return p.command === null && !p.flags.has('help') ? 1 : 0;
    }
    // --host node (bench, generate, calibrate): the same engine under Node on Dawn (tools/node/node_host.ts).
    const hostArg = p.values.get('host') ?? 'chromium';
    if (!(HOSTS as readonly string[]).includes(hostArg)) throw new InvalidArgumentError('host', `must be one of ${HOSTS.join(', ')} (got ${hostArg})`);
    const host = hostArg as Host;
    if (host === 'node' && p.flags.has('vs-webllm')) throw new UnsupportedFeatureError('--host node --vs-webllm', 'WebLLM runs in Chromium only: leave out --host node');
    if (p.command === 'generate') {
      const g = parseGenerate(p);
      session = await Session.open(host);
      await runGenerate(session, g);
    } else if (p.command === 'calibrate') {
      const c = parseCalibrate(p);
      session = await Session.open(host);
      await runCalibrate(session, c);
    } else if (p.command === 'bench' && p.flags.has('vs-webllm')) {
      await runVsWebllm(parseVsWebllm(p));
    } else if (p.command === 'bench') {
      const b = parseBench(p);
      session = await Session.open(host);
      await runBench(session, b);
      if (b.popSuite) await runPopQuality(session, b, readFileSync(QUALITY_TEXT, 'utf8'));
    } else {
      throw new CliError('INVALID_ARGUMENT', `Invalid command: '${p.command}' (expected generate, bench or calibrate).`, { argument: 'command' });
    }
    return 0;
  } catch (e) {
    const err = CliError.from(e);
    if (json) process.stdout.write(JSON.stringify({ error: err.toInfo() }) + '\n');
    process.stderr.write(`pop-llm: error ${err.code}: ${err.message.replace(/\s*\n\s*/g, ' ')}\n`);
    return 1;
  } finally {
    await session?.close();
  }
}

process.exit(await main(process.argv.slice(2)));
