// Prints the plain closing line CI reads: "N passed, N failed, N skipped".
import type { FullConfig, Reporter, Suite } from '@playwright/test/reporter';

export default class SummaryReporter implements Reporter {
  private suite: Suite | null = null;
  onBegin(_config: FullConfig, suite: Suite): void {
    this.suite = suite;
  }
  printsToStdio(): boolean {
    return true;
  }
  onEnd(): void {
    let passed = 0, failed = 0, skipped = 0;
    for (const t of this.suite?.allTests() ?? []) {
      const o = t.outcome();
      if (o === 'expected' || o === 'flaky') passed++;
      else if (o === 'skipped') skipped++;
      else failed++;
    }
    console.log(`${passed} passed, ${failed} failed, ${skipped} skipped`);
  }
}
