# Hop trace of single round trips (e2e-hop-trace.patch): each leg's p50 (ms) over the complete rows, one column
# per trace directory (e.g. before/after, or three runs). `python3 analyze-e2e.py [--skip N] [--p90] DIR...`
import glob,collections,sys
args=sys.argv[1:]
skip=20; p=50
if '--skip' in args: i=args.index('--skip'); skip=int(args[i+1]); del args[i:i+2]
if '--p90' in args: args.remove('--p90'); p=90
full=['c0-sdk-run','c0b-sdk-write','s0-onrequest','s0b-prehandler','s1-post-handler','s1b-post-checked','s2-post-inserted','f2-fw-taken','f3-fw-sent','d1-fc-tasks','1-ix-send','2-mg-recv','3-mg-pipe','4-wk-recv','5-wk-send','6-mg-piperecv','7-mg-send','8-ix-recv','d2-fc-sendResults','d3-fc-flush-send','f4-fw-results','f4b-notify','f5-fw-stored','g3-get-woken','g4-get-answer','g5-onsend','c1-sdk-headers','c2-sdk-done']
side=[('g5-onsend','g6-onresponse'),('f5-fw-stored','d4-fc-acked'),('1-ix-send','8-ix-recv')]
def pct(xs,q): xs=sorted(xs); return xs[min(len(xs)-1,int(q/100*len(xs)))]
cols=[]; legs=None
for d in args:
    ev=collections.defaultdict(dict)
    for f in glob.glob(d+'/hop-*.txt'):
        for line in open(f):
            x=line.split()
            if len(x)==3 and x[0]!='gc': ev[x[0]][x[1]]=float(x[2])
    seen=collections.Counter(t for r in ev.values() for t in r)
    chain=[t for t in full if seen[t]>0]
    rows=sorted((r for r in ev.values() if all(t in r for t in chain)),key=lambda r:r['c0-sdk-run'])[skip:]
    ls=list(zip(chain,chain[1:]))+[(chain[0],chain[-1])]+side
    legs=legs or ls
    col={}
    for a,b in ls:
        xs=[r[b]-r[a] for r in rows if a in r and b in r]
        if xs: col[(a,b)]=pct(xs,p)
    cols.append((d,len(rows),col))
print('%-40s'%('p%d ms (rows)'%p)+''.join('%9s'%('(%d)'%n) for _,n,_ in cols))
for leg in legs:
    print('%-40s'%(leg[0]+' -> '+leg[1])+''.join('%9s'%('%.3f'%c[leg] if leg in c else '-') for _,_,c in cols))
# The engine's own round trip in the same rows (interchange → worker → interchange): the run's yardstick.
tot=(full[0],full[-1]); eng=('1-ix-send','8-ix-recv')
print('%-40s'%'total / engine (p50s)'+''.join('%9s'%('%.2f'%(c[tot]/c[eng]) if tot in c and eng in c else '-') for _,_,c in cols))
for d,_,_ in cols: print('  ', d)
