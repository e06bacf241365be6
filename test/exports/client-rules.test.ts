// exports(5) client rules: syntax, defaults, precedence, and the refusals that keep typos from
// granting or denying silently.
import test from 'ava';
import {
  byPrecedence, ClientRuleError, DEFAULT_CLIENTS, DEFAULT_OPTIONS, describeRules, matchClient,
  parseClientRules, resolveClientRules,
} from '../../src/exports/client-rules.js';

const rules = async (text: string) => byPrecedence(await resolveClientRules(parseClientRules(text)));
const specOf = (r: Awaited<ReturnType<typeof rules>>, address: string) => matchClient(r, address)?.spec;

test('a bare client takes the exports(5) defaults: ro, root_squash, anon 65534, secure', (t) => {
  const [r] = parseClientRules('10.0.0.1');
  t.deepEqual(r?.options, DEFAULT_OPTIONS);
  t.deepEqual(DEFAULT_OPTIONS, { rw: false, squash: 'root', anonuid: 65534, anongid: 65534, secure: true });
});

test('options parse, later ones override earlier ones, and "(opts)" alone means every client', (t) => {
  const [a, b, c, d] = parseClientRules('10.0.0.0/24(rw,sync,no_subtree_check)  10.0.1.5(ro,all_squash,anonuid=1000,anongid=100)\t' +
    'node1(rw,ro,no_root_squash,insecure) (rw,all_squash,no_all_squash)');
  t.deepEqual(a, { spec: '10.0.0.0/24', column: 0, options: { ...DEFAULT_OPTIONS, rw: true } });
  t.deepEqual(b?.options, { rw: false, squash: 'all', anonuid: 1000, anongid: 100, secure: true });
  t.deepEqual(c?.options, { ...DEFAULT_OPTIONS, squash: 'none', secure: false });
  t.is(d?.spec, '*');
  t.deepEqual(d?.options, { ...DEFAULT_OPTIONS, rw: true, squash: 'root' });
});

test('mistakes are refused with the column of the rule and a reason', (t) => {
  const cases: [string, RegExp][] = [
    ['10.0.0.1(rw,no_squash)', /unknown option 'no_squash'/],
    ['10.0.0.1(rw', /parentheses/],
    ['(rw))', /parentheses/],
    ['10.0.0.1)', /unbalanced/],
    ['10.0.0.1(anonuid=-1)', /anonuid wants a number/],
    ['10.0.0.1(anonuid)', /anonuid wants a number/],
    ['10.0.0.1(rw=1)', /takes no value/],
    ['10.0.0.1(sync=yes)', /unknown option/],
    ['*.lab(rw)', /wildcard/],
    ['node?(rw)', /wildcard/],
    ['@hosts(rw)', /netgroups/],
    ['10.0.0.0/33', /prefix 33/],
    ['10.0.0.0/255.0.255.0', /not contiguous/],
    ['10.0.0.300/24', /not an IP address/],
    ['fe80::/ff::', /neither a prefix/],
    ['bad_name!', /neither an address/],
  ];
  for (const [text, re] of cases) {
    const e = t.throws(() => parseClientRules(`1.2.3.4 ${text}`), { instanceOf: ClientRuleError }, text);
    t.regex(e?.message ?? '', re, text);
    t.is(e?.column, 8, text);
  }
});

test('precedence is exports(5)\'s: single host, then network, then *, whatever the written order', async (t) => {
  const r = await rules('*(ro) 10.0.0.0/8(rw) 10.0.0.0/24(rw,insecure) 10.0.0.9(rw,all_squash) 2001:db8::/32 ::1');
  t.is(specOf(r, '10.0.0.9'), '10.0.0.9');
  // Two networks: the first written wins, not the longer prefix.
  t.is(specOf(r, '10.0.0.10'), '10.0.0.0/8');
  t.is(specOf(r, '10.200.0.1'), '10.0.0.0/8');
  t.is(specOf(r, '192.168.1.1'), '*');
  t.is(specOf(r, '2001:db8::5'), '2001:db8::/32');
  t.is(specOf(r, '::1'), '::1');
  t.is(specOf(r, 'fe80::1'), '*');
});

test('IPv4-mapped IPv6 addresses (a socket listening on ::) match IPv4 rules', async (t) => {
  const r = await rules('10.0.0.0/24(rw) 192.168.0.7');
  t.is(specOf(r, '::ffff:10.0.0.5'), '10.0.0.0/24');
  t.is(specOf(r, '::ffff:192.168.0.7'), '192.168.0.7');
  t.is(specOf(r, '::ffff:10.0.1.5'), undefined);
  t.is(specOf(r, '10.0.1.5'), undefined);
});

test('netmask and prefix notations agree; /0 matches every address of its family', async (t) => {
  const r = await rules('172.16.0.0/255.255.0.0 0.0.0.0/0(ro)');
  t.is(specOf(r, '172.16.200.1'), '172.16.0.0/255.255.0.0');
  t.is(specOf(r, '8.8.8.8'), '0.0.0.0/0');
});

test('host names resolve to all their addresses when loaded; a name that does not is an error', async (t) => {
  const r = await rules('localhost(rw)');
  t.is(specOf(r, '127.0.0.1'), 'localhost');
  t.is(r[0]?.kind, 'host');
  await t.throwsAsync(resolveClientRules(parseClientRules('10.0.0.1 no-such-host.invalid(rw)')),
    { instanceOf: ClientRuleError, message: /no-such-host.invalid' does not resolve/ });
});

test('the default rule admits loopback only, read-write, root as root, from privileged ports', async (t) => {
  const r = await rules(DEFAULT_CLIENTS);
  for (const a of ['127.0.0.1', '127.1.2.3', '::1', '::ffff:127.0.0.1']) {
    t.deepEqual(matchClient(r, a)?.options, { ...DEFAULT_OPTIONS, rw: true, squash: 'none' }, a);
  }
  for (const a of ['10.0.0.1', '::2', '0.0.0.0']) t.is(matchClient(r, a), undefined, a);
  // In matching order: the single host before the network.
  t.is(describeRules(r), '::1(rw,no_root_squash,secure) 127.0.0.0/8(rw,no_root_squash,secure)');
});
