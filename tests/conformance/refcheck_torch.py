#!/usr/bin/env python3
"""The plain-C references of the ABI 1.1 ops against PyTorch in float64: attention forward
and backward (fused QKV strides, causal, key padding mask), layernorm forward/backward,
softmax backward, embedding forward/backward, GELU (erf) backward, batched GEMM with a
broadcast B. Inputs are fp32, outputs fp32, so each must agree to a few fp32 ulps of the
largest value. Exit 0 all agree, 1 a mismatch, 77 numpy/torch missing (skipped).
usage: refcheck_torch.py LIBHETRUN_KERNELS_SHARED.so"""
import ctypes as C, math, sys
try:
    import numpy as np, torch
except ImportError as e:
    print("skipped: %s" % e)
    sys.exit(77)
lib = C.CDLL(sys.argv[1])
failures = []
def agree(what, got, want):
    got, want = np.asarray(got, np.float64), np.asarray(want, np.float64)
    err = np.abs(got - want).max() / max(1.0, np.abs(want).max())
    ok = err <= 4e-6
    print("%s %-28s error %.3g" % ("ok  " if ok else "FAIL", what, err))
    if not ok: failures.append(what)
class Desc(C.Structure):
    _fields_=[('struct_size',C.c_uint32),('kind',C.c_uint32),('dtype',C.c_uint32),('out_dtype',C.c_uint32),('flags',C.c_uint32),('act',C.c_uint32),
    ('m',C.c_int64),('n',C.c_int64),('k',C.c_int64),('lda',C.c_int64),('ldb',C.c_int64),('ldc',C.c_int64),('alpha',C.c_double),('beta',C.c_double),('p',C.c_double*8),
    ('batch',C.c_int64),('heads',C.c_int64),('stride_a',C.c_int64),('stride_b',C.c_int64),('stride_c',C.c_int64)]
def run(d,arrs):
    d.struct_size=C.sizeof(Desc)
    ptrs=(C.c_void_p*len(arrs))(*[a.ctypes.data if a is not None else None for a in arrs])
    r=lib.hetrun_reference_run(C.byref(d),ptrs); assert r==0,r
rng=np.random.default_rng(0)
# attention fwd/bwd, fused qkv layout, causal + mask
B,H,L,D=2,3,5,4; Cw=H*D
for causal in (0,1):
  for usemask in (0,1):
    qkv=rng.standard_normal((B,L,3*Cw)).astype(np.float32)
    mask=np.ones((B,L),np.int32); mask[1,3:]=0
    O=np.zeros((B,L,Cw),np.float32); lse=np.zeros((B,H,L),np.float32)
    d=Desc(kind=18,dtype=0,out_dtype=0,m=L,n=L,k=D,lda=3*Cw,ldb=3*Cw,alpha=1/math.sqrt(D),batch=B,heads=H,flags=(8 if causal else 0)|(16 if usemask else 0))
    # pass base pointers offset: use views via ctypes pointer arithmetic
    base=qkv.ctypes.data
    ptrs=(C.c_void_p*6)(base, base+Cw*4, base+2*Cw*4, mask.ctypes.data, O.ctypes.data, lse.ctypes.data)
    d.struct_size=C.sizeof(Desc); assert lib.hetrun_reference_run(C.byref(d),ptrs)==0
    t=torch.tensor(qkv,dtype=torch.float64,requires_grad=True)
    Q=t[:,:,:Cw].reshape(B,L,H,D).transpose(1,2); K=t[:,:,Cw:2*Cw].reshape(B,L,H,D).transpose(1,2); V=t[:,:,2*Cw:].reshape(B,L,H,D).transpose(1,2)
    S=Q@K.transpose(-1,-2)/math.sqrt(D)
    allow=torch.ones(B,1,L,L,dtype=torch.bool)
    if causal: allow=allow & torch.tril(torch.ones(L,L,dtype=torch.bool))
    if usemask: allow=allow & torch.tensor(mask!=0)[:,None,None,:]
    S=S.masked_fill(~allow,-math.inf)
    P=torch.softmax(S,-1); Ot=(P@V).transpose(1,2).reshape(B,L,Cw)
    LSE=torch.logsumexp(S,-1)
    agree('attention fwd O c%d m%d' % (causal, usemask), O, Ot.detach().numpy())
    agree('attention fwd lse c%d m%d' % (causal, usemask), lse, LSE.detach().numpy())
    dO=rng.standard_normal((B,L,Cw)).astype(np.float32)
    Ot.backward(torch.tensor(dO,dtype=torch.float64))
    dqkv=np.zeros_like(qkv); db=dqkv.ctypes.data
    d.kind=19
    ptrs=(C.c_void_p*10)(base, base+Cw*4, base+2*Cw*4, mask.ctypes.data, O.ctypes.data, dO.ctypes.data, lse.ctypes.data, db, db+Cw*4, db+2*Cw*4)
    d.ldc=0
    assert lib.hetrun_reference_run(C.byref(d),ptrs)==0
    agree('attention bwd dQKV c%d m%d' % (causal, usemask), dqkv, t.grad.numpy())
# layernorm fwd/bwd
m,n=6,7
x=rng.standard_normal((m,n)).astype(np.float32); g=rng.standard_normal(n).astype(np.float32); b=rng.standard_normal(n).astype(np.float32)
y=np.zeros_like(x); mean=np.zeros(m,np.float32); rstd=np.zeros(m,np.float32)
d=Desc(kind=20,dtype=0,out_dtype=0,m=m,n=n,k=1); d.p[0]=1e-5
run(d,[x,g,b,y,mean,rstd])
X=torch.tensor(x,dtype=torch.float64,requires_grad=True);G=torch.tensor(g,dtype=torch.float64,requires_grad=True);Bt=torch.tensor(b,dtype=torch.float64,requires_grad=True)
Y=torch.nn.functional.layer_norm(X,(n,),G,Bt,1e-5); agree('layernorm fwd', y, Y.detach().numpy())
dy=rng.standard_normal((m,n)).astype(np.float32); Y.backward(torch.tensor(dy,dtype=torch.float64))
dx=np.ones_like(x); dg=np.ones(n,np.float32); dbb=np.ones(n,np.float32)
d=Desc(kind=21,dtype=0,out_dtype=0,m=m,n=n,k=1,beta=1.0); d.p[1]=0.0
run(d,[x,g,mean,rstd,dy,dx,dg,dbb])
agree('layernorm bwd dX (beta 1)', dx, X.grad.numpy() + 1); agree('layernorm bwd dgamma', dg, G.grad.numpy()); agree('layernorm bwd dbeta', dbb, Bt.grad.numpy())
# softmax bwd
X2=torch.tensor(x,dtype=torch.float64,requires_grad=True); Y2=torch.softmax(X2,-1); Y2.backward(torch.tensor(dy,dtype=torch.float64))
ys=Y2.detach().numpy().astype(np.float32); dxs=np.zeros_like(x)
run(Desc(kind=22,dtype=0,out_dtype=0,m=m,n=n,k=1),[ys,dy,dxs]); agree('softmax bwd', dxs, X2.grad.numpy())
# embedding bwd
ids=np.array([3,1,3,0,9,3],np.int32); V=5
dout=rng.standard_normal((6,n)).astype(np.float32); dt=np.zeros((V,n),np.float32)
run(Desc(kind=24,dtype=0,out_dtype=0,m=6,n=n,k=V,alpha=1.0),[ids,dout,dt])
want=np.zeros((V,n)); 
for i,r in enumerate(ids):
    if r<V: want[r]+=dout[i]
agree('embedding bwd (id 9 ignored)', dt, want)
out=np.zeros((6,n),np.float32); tab=rng.standard_normal((V,n)).astype(np.float32)
run(Desc(kind=23,dtype=0,out_dtype=0,m=6,n=n,k=V,alpha=1.0),[ids,tab,out]); agree('embedding fwd', out[[0,1,2,3,5]], tab[ids[[0,1,2,3,5]]])
if not np.isnan(out[4]).all(): failures.append('embedding fwd: id 9 of 5 rows is not a NaN row')
# gelu erf grad
xx=rng.standard_normal(10).astype(np.float32); gy=rng.standard_normal(10).astype(np.float32); gx=np.zeros(10,np.float32)
run(Desc(kind=3,dtype=0,out_dtype=0,m=1,n=10,k=1,act=2),[xx,gy,gx])
Xg=torch.tensor(xx,dtype=torch.float64,requires_grad=True); torch.nn.functional.gelu(Xg).backward(torch.tensor(gy,dtype=torch.float64)); agree('gelu erf bwd', gx, Xg.grad.numpy())
# batched gemm with broadcast B
A=rng.standard_normal((3,4,5)).astype(np.float32); Bm=rng.standard_normal((5,6)).astype(np.float32); Cm=np.zeros((3,4,6),np.float32)
run(Desc(kind=0,dtype=0,out_dtype=0,m=4,n=6,k=5,alpha=1.0,batch=3,stride_a=20,stride_b=0,stride_c=0),[A,Bm,Cm]); agree('batched gemm, B broadcast', Cm, A.astype(np.float64) @ Bm)
print('%d mismatches' % len(failures))
sys.exit(1 if failures else 0)
