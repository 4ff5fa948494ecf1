/** A QMP event timestamp: wall-clock seconds and microseconds (qmp_event_build_dict). */
export function timestamp(): { seconds: number; microseconds: number } {
  const micros = Math.floor((performance.timeOrigin + performance.now()) * 1000);
  return { seconds: Math.floor(micros / 1e6), microseconds: micros % 1e6 };
}
