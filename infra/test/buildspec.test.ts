/**
 * `buildspec.yml` (the pipeline's build): it parses, and every command it
 * runs is either installed by an earlier command of the buildspec or exists
 * in this repository (xtask subcommands, cargo-lambda from `cargo xtask
 * setup`); the reports it publishes are the files the test run writes.
 */
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { readBuildspec } from '../lib/pipeline-stack';
import { workspaceRegistry } from './app';

const root = workspaceRegistry().root;
const spec = readBuildspec(root) as any;
const commands: string[] = ['install', 'pre_build', 'build', 'post_build']
  .flatMap((phase) => spec.phases?.[phase]?.commands ?? []);

/** The subcommands `cargo xtask --help` lists. */
function xtaskCommands(): Set<string> {
  const help = execFileSync('cargo', ['xtask', '--help'], { cwd: root, encoding: 'utf8' });
  const section = help.split(/^Commands:$/m)[1].split(/^\S/m)[0];
  return new Set([...section.matchAll(/^ {2}(\S+)/gm)].map((m) => m[1]));
}

/** Simple commands of a line: split on pipes and lists, leading VAR=value dropped. */
function simpleCommands(line: string): string[][] {
  return line.split(/\|\||&&|\||;/).map((part) => {
    const words = part.trim().split(/\s+/).filter((w) => w.length > 0);
    while (words.length > 1 && /^[A-Z_]+=/.test(words[0])) {
      words.shift();
    }
    return words;
  }).filter((w) => w.length > 0);
}

/** Tools of the CodeBuild standard image used only to install the toolchain. */
const IMAGE_TOOLS = new Set(['curl', 'sh', 'tar', 'export']);

test('buildspec.yml is a version 0.2 spec with install and build phases', () => {
  expect(spec.version).toBe(0.2);
  expect(spec.phases.install.commands.length).toBeGreaterThan(0);
  expect(spec.phases.build.commands.length).toBeGreaterThan(0);
  expect(spec.artifacts).toBeUndefined();
});

test('every command it runs exists: installed before use, or in this repository', () => {
  const xtask = xtaskCommands();
  let rustup = false;
  let setup = false;
  let venvOnPath = false;
  for (const line of commands) {
    for (const words of simpleCommands(line)) {
      const [tool, sub, third] = words;
      if (tool === 'export') {
        venvOnPath ||= words.join(' ').includes('.venv/bin');
        continue;
      }
      if (IMAGE_TOOLS.has(tool)) {
        rustup ||= words.join(' ').includes('--default-toolchain');
        continue;
      }
      expect({ line, tool }).toEqual({ line, tool: 'cargo' });
      expect({ line, rustupFirst: rustup }).toEqual({ line, rustupFirst: true });
      if (sub === 'xtask') {
        expect({ line, known: xtask.has(third) }).toEqual({ line, known: true });
        setup ||= third === 'setup';
      } else if (sub === 'lambda') {
        expect({ line, setupFirst: setup, venvOnPath }).toEqual({ line, setupFirst: true, venvOnPath: true });
        expect(fs.existsSync(path.join(root, '.venv', 'bin', 'cargo-lambda'))).toBe(true);
      } else {
        throw new Error(`${line}: cargo ${sub} is neither an xtask command nor installed by this buildspec`);
      }
    }
  }
  expect(setup).toBe(true);
});

test('the reports it publishes are the files the test run writes', () => {
  const nextest = fs.readFileSync(path.join(root, '.config', 'nextest.toml'), 'utf8');
  expect(nextest).toMatch(/\[profile\.default\.junit\]\s*\npath = "junit\.xml"/);
  expect(spec.reports.nextest.files).toEqual(['target/nextest/default/junit.xml']);
  const postman = fs.readFileSync(path.join(root, 'xtask', 'src', 'postman.rs'), 'utf8');
  const dir = postman.match(/pub const JUNIT_DIR: &str = "([^"]+)";/)![1];
  expect(spec.reports.collections['base-directory']).toBe(dir);
  for (const report of Object.values<any>(spec.reports)) {
    expect(report['file-format']).toBe('JUNITXML');
  }
});
