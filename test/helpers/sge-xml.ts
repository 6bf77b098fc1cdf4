/** `qstat -xml` as Debian's gridengine 8.1.9 prints it (running jobs under queue_info, the rest under job_info). */
export function sgeXml(rows: Array<[string, string]>): string {
  const entry = ([id, state]: [string, string]) => [
    `    <job_list state="${/r|t/.test(state) && !/q/.test(state) ? 'running' : 'pending'}">`,
    `      <JB_job_number>${id}</JB_job_number>`, '      <JAT_prio>0.50000</JAT_prio>', '      <JB_name>funcx-block-0</JB_name>',
    '      <JB_owner>root</JB_owner>', `      <state>${state}</state>`, '      <queue_name>all.q@vm</queue_name>', '      <slots>1</slots>',
    '    </job_list>',
  ].join('\n');
  const running = rows.filter(([, s]) => /r|t/.test(s) && !/q/.test(s));
  const waiting = rows.filter((r) => !running.includes(r));
  return [
    "<?xml version='1.0'?>",
    '<job_info  xmlns:xsd="http://arc.liv.ac.uk/repos/darcs/sge/source/dist/util/resources/schemas/qstat/qstat.xsd">',
    '  <queue_info>', ...running.map(entry), '  </queue_info>', '  <job_info>', ...waiting.map(entry), '  </job_info>', '</job_info>', '',
  ].join('\n');
}
