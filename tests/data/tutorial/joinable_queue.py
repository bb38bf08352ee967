import os
import time
from multiprocessing import JoinableQueue, Process


def producer(q):
    for i in range(5):
        time.sleep(0.2)
        res='包子%s' %i
        q.put(res)
        print('%s生产%s' %(os.getpid(),res))
    q.join() #记录消费者消费次数 等着消费者都消费完

def consumer(q):
    while True:
        res=q.get()
        time.sleep(0.2)
        print('%s吃%s' %(os.getpid(),res))
        q.task_done() #消费者消费一条  就告诉生产者


if __name__=='__main__':
    q=JoinableQueue()
    #生产者
    p1=Process(target=producer,args=(q,))
    p2 = Process(target=producer, args=(q,))
    #消费者
    c1=Process(target=consumer,args=(q,))
    c2 = Process(target=consumer, args=(q,))

    c1.daemon=True #主进程结束了，肯定也消费完了，所以也随之结束吧
    c2.daemon = True
    p1.start()
    p2.start()
    c1.start()
    c2.start()
    p1.join() #主进程在等p1结束，p1在等消费者结束
    p2.join()



    print('主')
