import glob,collections,sys
ev=collections.defaultdict(dict)
for f in glob.glob(sys.argv[1]+'/hop-*.txt'):
    for line in open(f):
        p=line.split()
        if len(p)==3 and not p[0]=='gc': ev[p[0]][p[1]]=float(p[2])
chain=['c0-sdk-run','s1-post-handler','s1b-post-checked','s2-post-inserted','f2-fw-taken','f3-fw-sent','d1-fc-tasks','1-ix-send','2-mg-recv','3-mg-pipe','4-wk-recv','5-wk-send','6-mg-piperecv','7-mg-send','8-ix-recv','d2-fc-sendResults','d3-fc-flush-send','f4-fw-results','f5-fw-stored','g3-get-woken','g4-get-answer','c2-sdk-done']
side=[('s2-post-inserted','c1-sdk-ran'),('d3-fc-flush-send','d4-fc-acked')]
rows=[d for d in ev.values() if all(t in d for t in chain)]
rows.sort(key=lambda d:d['c0-sdk-run']); rows=rows[100:]
def pct(xs,p): xs=sorted(xs); return xs[min(len(xs)-1,int(p/100*len(xs)))]
print('complete',len(rows))
print('%-40s %7s %7s %7s'%('hop','p50','p90','mean'))
for a,b in list(zip(chain,chain[1:]))+[(chain[0],chain[-1])]+side:
    xs=[d[b]-d[a] for d in rows if a in d and b in d]
    if xs: print('%-40s %7.3f %7.3f %7.3f'%(a+' -> '+b,pct(xs,50),pct(xs,90),sum(xs)/len(xs)))
# was the get handler in before results came?
late=sum(1 for d in rows if 'g2-get-waiting' not in d)
print('GETs that found it finished (no wait):',late)
