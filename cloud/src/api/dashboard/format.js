// rapport operator dashboard: building elements and formatting what the API says (numbers,
// times, durations, kilometres, fault codes, layers, a timeline entry's label) — no state,
// no network. Everything reaches the page through textContent and attribute setters, never
// as markup.

/** An element with attributes and children (strings become text nodes). */
export function el(tag, attrs = {}, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === null || v === false) continue;
    if (k === 'testid') e.dataset.testid = String(v);
    else if (k === 'class') e.className = String(v);
    else e.setAttribute(k, String(v));
  }
  for (const c of children) {
    if (c !== undefined && c !== null) e.append(c);
  }
  return e;
}

export function num(v) {
  return typeof v === 'number' && Number.isFinite(v) ? v : null;
}

export function str(v) {
  return v === undefined || v === null ? '' : String(v);
}

export function words(v) {
  return str(v).replaceAll('_', ' ');
}

export function formatTime(ms) {
  const n = num(ms);
  if (n === null) return '—';
  const d = new Date(n);
  if (Number.isNaN(d.getTime())) return '—';
  return `${d.toISOString().slice(0, 16).replace('T', ' ')} UTC`;
}

export function formatDate(ms) {
  const n = num(ms);
  if (n === null) return '—';
  const d = new Date(n);
  return Number.isNaN(d.getTime()) ? '—' : d.toISOString().slice(0, 10);
}

/** A duration in ms (an age the cloud computed), as `42 s`, `7 min`, `3 h 5 min`, `2 d 4 h`. */
export function formatDuration(ms) {
  const n = num(ms);
  if (n === null) return '—';
  const s = Math.max(0, Math.floor(n / 1000));
  if (s < 60) return `${s} s`;
  if (s < 3600) return `${Math.floor(s / 60)} min`;
  if (s < 86400) return `${Math.floor(s / 3600)} h ${Math.floor((s % 3600) / 60)} min`;
  return `${Math.floor(s / 86400)} d ${Math.floor((s % 86400) / 3600)} h`;
}

export const KM = new Intl.NumberFormat('en', { maximumFractionDigits: 1 });

export function km(meters) {
  const m = num(meters);
  return m === null ? '—' : `${KM.format(m / 1000)} km`;
}

/** A DTC as the shared crate serialises it, as text (`P0300`, `SPN110/FMI0`, …). */
function dtcText(dtc) {
  if (dtc === null || dtc === undefined) return '?';
  if (typeof dtc === 'string') return dtc;
  if (typeof dtc === 'object') {
    if (typeof dtc.code === 'string') return dtc.code;
    const [kind, value] = Object.entries(dtc)[0] || [];
    if (kind === 'Obd' && typeof value === 'number') return obdCode(value);
    if (kind === 'Obd' && typeof value === 'string') return value;
    if (kind === 'J1939' && Array.isArray(value)) return `SPN${value[0]}/FMI${value[1]}`;
    if (kind === 'J1939' && value && typeof value === 'object') return `SPN${str(value.spn)}/FMI${str(value.fmi)}`;
    if (kind === 'Uds' && typeof value === 'number') {
      return `${obdCode(value >> 8)}-${(value & 0xff).toString(16).toUpperCase().padStart(2, '0')}`;
    }
    return JSON.stringify(dtc);
  }
  return String(dtc);
}

function obdCode(n) {
  const letters = ['P', 'C', 'B', 'U'];
  return `${letters[(n >> 14) & 3]}${((n >> 12) & 3).toString(16)}${(n & 0xfff).toString(16).toUpperCase().padStart(3, '0')}`;
}

function layersText(l) {
  if (!l || typeof l !== 'object') return '—';
  return `${str(l.category)} · car ${str(l.car)} · service ${str(l.service)} · ${str(l.activity)} · ${str(l.lifecycle)}`;
}

export const ALERT_KINDS = {
  critical_fault: 'critical fault',
  maintenance: 'maintenance due',
  partner_task: 'partner task',
};

/** The readable label of one timeline entry (source `car` or `cloud`) and its detail. */
export function describe(entry) {
  const d = entry.data && typeof entry.data === 'object' ? entry.data : {};
  switch (entry.kind) {
    // The car's records.
    case 'odometer':
      return [`Odometer ${km(d.odometer)}`, str(d.source)];
    case 'engine_hours': {
      const s = num(d.hours);
      return [`Engine hours ${s === null ? '—' : KM.format(s / 3600)} h`, str(d.source)];
    }
    case 'dtc_appeared':
      return [`Fault ${dtcText(d.dtc)} appeared`, `${str(d.severity)}${num(d.ecu) !== null ? `, ECU 0x${d.ecu.toString(16).toUpperCase()}` : ''}`];
    case 'dtc_cleared':
      return [`Fault ${dtcText(d.dtc)} cleared`, num(d.ecu) !== null ? `ECU 0x${d.ecu.toString(16).toUpperCase()}` : ''];
    case 'dtc_snapshot':
      return ['Fault snapshot', Array.isArray(d.active) ? `${d.active.length} active` : ''];
    case 'maintenance':
      return [`Maintenance ${str(d.item)}: ${words(d.status)}`, d.due_odometer !== undefined && d.due_odometer !== null ? `due at ${km(d.due_odometer)}` : ''];
    case 'prompt':
      return [`Prompt ${words(d.kind)} ${str(d.subject)}: ${words(d.action)}`, d.critical ? 'critical' : ''];
    case 'consent':
      return [`Consent ${words(d.kind)} ${d.granted === false ? 'withdrawn' : 'given'}`, ''];
    case 'unknown':
      return [`A record of a kind this cloud does not know`, num(d.tag) !== null ? `tag ${d.tag}` : ''];
    // The cloud's own entries.
    case 'layer':
      return [entry.from ? `Layers changed to ${layersText(entry.to)}` : `First placed in ${layersText(entry.to)}`, str(entry.why)];
    case 'strategy':
      return [`Strategy ${str(entry.rule)}: ${str(entry.action)}`, ''];
    case 'suppressed':
      return [`Strategy ${str(entry.rule)} held back`, str(entry.reason)];
    case 'alert':
      return [`Alert #${str(entry.id)} ${words(entry.event)}`, str(entry.detail)];
    case 'registered':
      return ['Registry entry', str(entry.detail)];
    default:
      return [words(entry.kind) || 'entry', JSON.stringify(entry.data ?? entry)];
  }
}
