# Hop trace of engine-tail's round trips (e2e-hop-trace.patch): p50/p90/p99 of each hop, the slowest 2 %, GCs
# that overlapped. `python3 analyze.py DIR`
import glob,collections,os,statistics,sys
ev=collections.defaultdict(dict)
for f in glob.glob(sys.argv[1] + '/hop-*.txt'):
    for line in open(f):
        p=line.split()
        if len(p)==3 and p[0].startswith('lat'): ev[p[0]][p[1]]=float(p[2])
tags=['0-submit','1-ix-send','2-mg-recv','3-mg-pipe','4-wk-recv','5-wk-send','6-mg-piperecv','7-mg-send','8-ix-recv','9-done']
rows=[]
for k,d in ev.items():
    if int(k[3:])<50: continue
    if all(t in d for t in tags): rows.append([d[tags[i+1]]-d[tags[i]] for i in range(len(tags)-1)]+[d['9-done']-d['0-submit']])
print('complete',len(rows),'of',len(ev))
rows.sort(key=lambda r:r[-1])
n=len(rows)
names=[f'{tags[i][2:]}->{tags[i+1][2:]}' for i in range(len(tags)-1)]
def pct(xs,p): xs=sorted(xs); return xs[min(len(xs)-1,int(p/100*len(xs)))]
print('%-22s %8s %8s %8s %8s'%('hop','p50','p90','p99','mean'))
for i,nm in enumerate(names+['total']):
    xs=[r[i] for r in rows]
    print('%-22s %8.3f %8.3f %8.3f %8.3f'%(nm,pct(xs,50),pct(xs,90),pct(xs,99),statistics.mean(xs)))
slow=rows[int(0.98*n):]
print('slowest 2%: mean of each hop')
for i,nm in enumerate(names+['total']):
    print('%-22s %8.3f'%(nm,statistics.mean(r[i] for r in slow)))
gcs=[]
for f in glob.glob(sys.argv[1] + '/hop-*.txt'):
    for line in open(f):
        p=line.split()
        if p and p[0]=='gc': gcs.append((os.path.basename(f).split('-')[1].split('.')[0],int(p[1]),float(p[2]),float(p[3])))
t0=min(d['0-submit'] for k,d in ev.items() if '0-submit' in d)
lat=[g for g in gcs if g[2]>=t0]
print('GCs during latency phase:',len(lat), [ (g[0],g[1],round(g[3],2)) for g in lat])
# slow samples with a worker hop > 2ms: any gc overlapping in any process?
cnt=0;ov=0
for k,d in ev.items():
    if int(k[3:])<50 or '3-mg-pipe' not in d or '4-wk-recv' not in d: continue
    if d['4-wk-recv']-d['3-mg-pipe']>2:
        cnt+=1
        if any(g[2] < d['4-wk-recv'] and g[2]+g[3] > d['3-mg-pipe'] for g in gcs): ov+=1
print('worker hops > 2 ms:',cnt,'overlapping a GC:',ov)
