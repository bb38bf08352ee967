#!/usr/bin/env python
# -*- coding: utf-8 -*-
# Author qiqiYang
import os
import time
from multiprocessing import Pool


def work(name):
    print('%s%s开始工作了' %(os.getpid(),name))
    time.sleep(0.2)
    print('%s%s工作完毕' %(os.getpid(),name))
    return  'ok'

if __name__=='__main__':
    p=Pool(4) #进程池中从无到有的创建3个进程，以后就是这三个进程在执行任务 不写默认是os.cpu_count()
    for i in range(8):
        res=p.apply(work,args=('alex',)) #同步提交任务 串行工作 拿到结果再往下走
        print(res)
